"""Fake engines for contract tests where the real engine is beside the point (policies, schemas)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from speech_backend.errors import InvalidArgument, VoiceNotFound
from speech_backend.protocols import ProgressHook, RecognitionOptions, SynthesisOptions
from speech_backend.results import Audio, Segment, SpeechChunk, Transcript, Voice
from speech_backend.text import lead_in, normalize_text, split_sentences

FAKE_VOICE = Voice(
    id="fake-tone",
    name="tone",
    language="en_US",
    sample_rate=16000,
    quality="x_low",
    speakers=(),
    licence="Apache-2.0",
    attribution="speech-tools test tone",
    engine="fake",
)


class FakeSynthesizer:
    """Speaks every sentence as a 440 Hz tone, 50 ms per character."""

    engine = "fake"

    def voices(self) -> tuple[Voice, ...]:
        """The single fake voice."""
        return (FAKE_VOICE,)

    def load(self, voice_id: str) -> None:
        """Nothing to load; an unknown voice is refused."""
        if voice_id != FAKE_VOICE.id:
            raise VoiceNotFound(
                f"no voice with id {voice_id!r}; call list_voices (available: {FAKE_VOICE.id})"
            )

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """One tone per sentence (the first in two with `options.lead_in_words`, as Piper)."""
        self.load(voice_id)
        if not 0.5 <= options.speed <= 2.0:
            raise InvalidArgument(f"speed must be between 0.5 and 2.0; got {options.speed:g}")
        sentences = lead_in(split_sentences(normalize_text(text)), options.lead_in_words)
        return self._chunks(sentences, options.speed)

    def _chunks(self, sentences: list[str], speed: float) -> Iterator[SpeechChunk]:
        rate, offset = FAKE_VOICE.sample_rate, 0.0
        for index, sentence in enumerate(sentences):
            n = int(rate * 0.05 * len(sentence) / speed)
            samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
            chunk = SpeechChunk(index, sentence, Audio(samples, rate), start=offset)
            offset = chunk.end
            yield chunk


class FakeRecognizer:
    """Returns a fixed text for any audio, in one segment spanning the input."""

    engine = "fake"

    def __init__(self, text: str = "fake transcript") -> None:
        self.text = text

    @property
    def model_id(self) -> str:
        """A fixed id."""
        return "fake"

    @property
    def multilingual(self) -> bool:
        """The fake only says English."""
        return False

    @property
    def languages(self) -> tuple[str, ...]:
        """English."""
        return ("en",)

    def check_options(self, options: RecognitionOptions) -> None:
        """Only English."""
        if options.language not in (None, "en"):
            raise InvalidArgument("the fake recognizer transcribes English only")

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """The fixed text, timed to the whole input."""
        if progress is not None:
            progress(audio.duration, audio.duration)
        segment = Segment(0.0, audio.duration, self.text, avg_logprob=-0.1, no_speech_prob=0.0)
        return Transcript(self.text, "en", 1.0, audio.duration, (segment,))
