"""The shapes every surface emits, built once: encoded speech, speech frames (resampled, PCM16,
base64, with their offsets and sequence) and transcripts as a principal may receive them (PII
redacted by policy)."""

from __future__ import annotations

import base64
import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Any

from agent_tools.core.cost import CallCost, Cost
from policies import Policy, Principal
from speech_backend import Audio, AudioFormat, SpeechChunk, Transcript, resample, to_pcm16


@dataclass(frozen=True)
class SentenceTiming:
    """Where one sentence of the spoken text sits in the audio."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class WordSpan:
    """Where one written word is spoken, in seconds (from the start of the audio, or of whatever the
    caller measures from)."""

    text: str
    start: float
    end: float

    def shifted(self, seconds: float) -> WordSpan:
        """The same word, `seconds` later."""
        return WordSpan(self.text, self.start + seconds, self.end + seconds)


def chunk_words(chunk: SpeechChunk) -> tuple[WordSpan, ...]:
    """The words of a synthesized sentence, from the start of its own audio; a sentence whose words
    the engine could not time counts as one word spanning it, so nothing spoken goes missing."""
    if not chunk.words:
        return (WordSpan(chunk.text, 0.0, chunk.audio.duration),)
    return tuple(
        WordSpan(w.text, max(0.0, w.start - chunk.start), min(chunk.audio.duration, w.end - chunk.start))
        for w in chunk.words
    )


@dataclass(frozen=True)
class Speech:
    """Encoded synthetic speech and what describes it."""

    data: bytes
    format: AudioFormat
    mime_type: str
    sample_rate: int
    duration: float
    voice: str
    engine: str
    sentences: tuple[SentenceTiming, ...]
    words: tuple[WordSpan, ...]
    owner: str  # the principal that asked for it
    cost: CallCost
    synthetic: bool = True


@dataclass(frozen=True)
class Heard:
    """A transcript as the caller may receive it, and what recognising it cost."""

    transcript: Transcript
    cost: CallCost


@dataclass(frozen=True)
class SpeechFrame:
    """One sentence of a stream: where it sits, and its audio as base64 PCM16."""

    index: int  # the sentence's place in the utterance
    text: str
    offset_ms: int  # where its audio starts in the utterance's audio
    sequence: int  # the audio frame's number in the utterance
    sample_rate: int  # of the frame's PCM16
    sentence_audio: Audio  # the sentence as synthesized, at the voice's rate
    duration_ms: float
    words: tuple[WordSpan, ...]  # from the start of the utterance's audio

    @functools.cached_property
    def pcm_bytes(self) -> bytes:
        """The audio as little-endian PCM16 at `sample_rate`."""
        return to_pcm16(resample(self.sentence_audio, self.sample_rate).samples).tobytes()

    @functools.cached_property
    def pcm16(self) -> str:
        """The audio as base64 little-endian PCM16 at `sample_rate`."""
        return base64.b64encode(self.pcm_bytes).decode()

    def mark(self) -> dict[str, Any]:
        """The sentence boundary a listener aligns text with, and its words' marks (milliseconds
        from the start of the utterance's audio)."""
        return {
            "index": self.index,
            "text": self.text,
            "offset_ms": self.offset_ms,
            "words": [word_mark(w) for w in self.words],
        }

    def audio(self) -> dict[str, Any]:
        """The audio of the sentence."""
        return {"sequence": self.sequence, "sample_rate": self.sample_rate, "pcm16": self.pcm16}


def word_mark(word: WordSpan) -> dict[str, Any]:
    """A word's mark in a stream: its text and span in milliseconds."""
    return {"text": word.text, "start_ms": round(word.start * 1000), "end_ms": round(word.end * 1000)}


class SpeechFrames:
    """The frames of one utterance, and what was delivered: exactly the text and audio the listener
    was sent (a frame built but never sent, because the listener barged in, is not counted)."""

    def __init__(self, sample_rate: int | None = None) -> None:
        self.sample_rate = sample_rate  # None: each sentence at its voice's rate
        self.delivered: list[str] = []
        self.words: list[WordSpan] = []  # delivered
        self.audio_ms = 0.0  # delivered
        self.cost = Cost()  # from now: waits and synthesis of every piece of the utterance
        self._built = 0
        self._built_ms = 0.0

    def frame(self, chunk: SpeechChunk) -> SpeechFrame:
        """The next frame, for a synthesized sentence."""
        frame = SpeechFrame(
            index=self._built,
            text=chunk.text,
            offset_ms=round(self._built_ms),
            sequence=self._built,
            sample_rate=self.sample_rate or chunk.audio.sample_rate,
            sentence_audio=chunk.audio,
            duration_ms=chunk.audio.duration * 1000,
            words=tuple(w.shifted(self._built_ms / 1000) for w in chunk_words(chunk)),
        )
        self._built += 1
        self._built_ms += frame.duration_ms
        return frame

    def sent(self, frame: SpeechFrame) -> None:
        """Count `frame` as delivered: the listener was sent all of it."""
        self.delivered.append(frame.text)
        self.words.extend(frame.words)
        self.audio_ms += frame.duration_ms

    def heard(self, played_ms: float) -> list[WordSpan]:
        """The delivered words a listener who played `played_ms` of the audio heard to their end."""
        return [w for w in self.words if round(w.end * 1000) <= played_ms]  # as its mark says

    @property
    def audio_seconds(self) -> float:
        """Audio delivered so far."""
        return self.audio_ms / 1000

    @property
    def first_audio_seconds(self) -> float:
        """Seconds from the utterance's start until now (read when its first frame is ready)."""
        return time.perf_counter() - self.cost.started

    def summary(self) -> dict[str, Any]:
        """What the utterance delivered (sentences, their text, audio, elapsed milliseconds) and what
        making it cost (its real-time factor over all audio synthesized, delivered or not)."""
        cost = self.cost.report(self._built_ms / 1000)
        return {
            "sentences": len(self.delivered),
            "text": " ".join(self.delivered),
            "audio_ms": round(self.audio_ms),
            "elapsed_ms": cost.wall_ms,
            "cost": cost.as_dict(),
            "synthetic": True,
        }


def redacted(transcript: Transcript, policy: Policy, principal: Principal) -> Transcript:
    """The transcript as `principal` may receive it: text, segments and words redacted when its policy
    says so (the one place redaction is applied)."""
    if not principal.redact_pii:
        return transcript

    def text(value: str) -> str:
        return policy.redact_text(principal, value)

    def words(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(dataclasses.replace(w, text=policy.redact_word(principal, w.text)) for w in items)

    segments = tuple(
        dataclasses.replace(s, text=text(s.text), words=words(s.words)) for s in transcript.segments
    )
    return dataclasses.replace(transcript, text=text(transcript.text), segments=segments)
