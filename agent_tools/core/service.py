"""The speech service: the one async boundary between callers and the blocking engines.

Bounds are checked before any engine work; engine work waits for a slot (bounded queue, bounded
wait, else `busy`), runs in a worker thread, and checks for cancellation between sentences and
segments, so a cancelled or timed-out call really stops and frees its slot.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream

from agent_tools.core.errors import DeadlineExceeded
from agent_tools.core.metrics import Metrics
from agent_tools.core.scheduling import Admission, SentenceSlots
from agent_tools.settings import ServiceSettings, Settings
from policies import Policy, Principal
from speech_backend import (
    MIME_TYPES,
    Audio,
    AudioFormat,
    AudioLimits,
    AudioTooLong,
    BackendUnavailable,
    InvalidArgument,
    ProgressHook,
    RecognitionOptions,
    Recognizer,
    SpeechChunk,
    SpeechError,
    SynthesisOptions,
    Synthesizer,
    TextTooLong,
    Transcript,
    Voice,
    build_recognizer,
    build_synthesizer,
    decode_audio,
    encode_audio,
    output_rate,
    resolve_device,
    synthetic_metadata,
)

logger = logging.getLogger(__name__)

ASR_RATE = 16000
T = TypeVar("T")
# Called with (done, total or None when unknown, message) as long work advances.
Progress = Callable[[float, float | None, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class SentenceTiming:
    """Where one sentence of the spoken text sits in the audio."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class SpeechPlan:
    """A checked utterance, ready to stream."""

    chunks: Iterator[SpeechChunk]
    voice: str
    principal: Principal
    first: bool = True  # the utterance's first text: its first sentence goes ahead of later ones
    spoken_seconds: float = 0.0  # audio the utterance already has: the output cap is on the whole


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
    synthetic: bool = True


class NotLoadedRecognizer:
    """Stands in when this process was started without recognition."""

    model_id = "none"
    multilingual = False

    def check_options(self, options: RecognitionOptions) -> None:
        """Nothing to check: every call is refused."""

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Always refuses."""
        raise BackendUnavailable("recognition is not loaded in this process; start it with transcription on")


class SpeechService:
    """Speak and transcribe with admitted, bounded, cancellable engine work off the event loop."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        recognizer: Recognizer,
        settings: ServiceSettings,
        audio_limits: AudioLimits,
        default_voice: str,
        metrics: Metrics | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.recognizer = recognizer
        self.settings = settings
        self.audio_limits = audio_limits
        self.default_voice = default_voice
        self.metrics = metrics or Metrics()
        self.policy = policy or Policy()
        queue, wait = settings.max_queued, settings.max_queue_wait_seconds
        # Utterances (whole clips and streams) are admitted as calls, then share the synthesis
        # slots sentence by sentence, a call's first sentence ahead of later ones.
        self.synthesis = Admission("synthesis", settings.max_utterances, queue, wait)
        self.sentences = SentenceSlots(settings.synthesis_slots)
        self.recognition = Admission("recognition", settings.recognition_slots, queue, wait)
        self.in_flight = 0  # calls and streams doing engine work, on every surface (drain waits for 0)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, speak: bool = True, transcribe: bool = True, policy: Policy | None = None
    ) -> SpeechService:
        """Resolve the device and load the engines asked for (blocking: call at start-up).

        An engine not asked for answers `backend_unavailable`.
        """
        engines = settings.engines
        device = resolve_device(engines.device)
        logger.info(
            "device resolved", extra={"device": device.kind, "providers": list(device.onnx_providers)}
        )
        synthesizer = build_synthesizer(engines, device)
        load = getattr(synthesizer, "load", None)
        if speak and load is not None:
            load(engines.piper.default_voice)
        recognizer = build_recognizer(engines, device) if transcribe else NotLoadedRecognizer()
        return cls(
            synthesizer,
            recognizer,
            settings.service,
            engines.audio,
            engines.piper.default_voice,
            policy=policy,
        )

    def caller(self, principal: Principal | None) -> Principal:
        """The principal a call is made as: the given one as the policy now defines it, else the local one."""
        return self.policy.local() if principal is None else self.policy.resolve(principal)

    def voices(self, language: str | None = None, *, principal: Principal | None = None) -> tuple[Voice, ...]:
        """Catalog voices the caller may use, optionally only those whose language starts with `language`."""
        who = self.caller(principal)
        self.policy.check_list_voices(who)
        voices = tuple(v for v in self.synthesizer.voices() if who.may_speak_with(v.id))
        if language is None:
            return voices
        wanted = language.replace("-", "_").lower()
        return tuple(v for v in voices if v.language.lower().startswith(wanted))

    def shutdown(self) -> None:
        """Stop admitting work; queued and later calls get `busy`, running calls finish."""
        self.synthesis.close()
        self.recognition.close()

    def check_text(self, text: str, spoken_chars: int = 0) -> None:
        """Refuse text over the character cap (counting `spoken_chars` already in the utterance).

        Raises:
            TextTooLong: with the limit attached.
        """
        total = spoken_chars + len(text)
        if total > self.settings.max_text_chars:
            raise TextTooLong(
                f"text is {total} characters, over the limit of {self.settings.max_text_chars}; "
                "split it into several calls",
                limit=self.settings.max_text_chars,
            )

    async def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        fmt: AudioFormat | None = None,
        speed: float = 1.0,
        sample_rate: int | None = None,
        deterministic: bool = False,
        progress: Progress | None = None,
        principal: Principal | None = None,
    ) -> Speech:
        """Synthesize `text` and encode it.

        Raises:
            TextTooLong: over the character cap (checked before any synthesis).
            AudioTooLong: the speech would run past the output cap.
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
            InvalidArgument, VoiceNotFound: bad arguments.
        """
        voice_id, who = self._admit_speech(text, voice, speed, principal)
        fmt = fmt or self.settings.default_format
        output_rate(fmt, 22050, sample_rate)  # refuse an impossible rate before synthesis
        options = SynthesisOptions(
            speed=speed, deterministic=deterministic or self.settings.deterministic_speech
        )

        def work() -> list[SpeechChunk]:
            chunks: list[SpeechChunk] = []
            total = 0.0
            for chunk in self._scheduled(self.synthesizer.synthesize(text, voice_id, options), first=True):
                chunks.append(chunk)
                total += chunk.audio.duration
                self._check_spoken(total)
                if progress is not None:
                    anyio.from_thread.run(progress, float(len(chunks)), None, f"sentence {len(chunks)}")
            return chunks

        started = time.perf_counter()
        chunks = await self._run(self.synthesis, work, self.settings.speak_timeout_seconds, "speak")
        if not chunks:
            raise InvalidArgument("text has nothing to speak: send at least one word")
        rate = chunks[0].audio.sample_rate
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), rate)
        engine = str(getattr(self.synthesizer, "engine", "unknown"))
        self.in_flight += 1  # encoding is part of the call a drain waits for
        try:
            data = await anyio.to_thread.run_sync(
                lambda: encode_audio(audio, fmt, sample_rate, synthetic_metadata(voice_id, engine))
            )
        finally:
            self.in_flight -= 1
        self.metrics.audio_seconds.labels("out").inc(audio.duration)
        self.policy.record_audio(who, audio.duration)
        logger.info(
            "speak done",
            extra={"voice": voice_id, "chars": len(text), "audio_s": round(audio.duration, 3),
                   "latency_s": round(time.perf_counter() - started, 3)},
        )  # fmt: skip
        return Speech(
            data=data,
            format=fmt,
            mime_type=MIME_TYPES[fmt],
            sample_rate=output_rate(fmt, rate, sample_rate),
            duration=audio.duration,
            voice=voice_id,
            engine=engine,
            sentences=tuple(SentenceTiming(c.text, round(c.start, 3), round(c.end, 3)) for c in chunks),
        )

    def _admit_speech(
        self, text: str, voice: str | None, speed: float, principal: Principal | None, spoken_text: str = ""
    ) -> tuple[str, Principal]:
        """The checks every utterance passes before synthesis: length, speed, caller and policy
        (over the whole utterance: `spoken_text` is what it already had)."""
        spoken_chars = len(spoken_text)
        self.check_text(text, spoken_chars)
        if not math.isfinite(speed):
            raise InvalidArgument("speed must be a finite number between 0.5 and 2.0")
        voice_id = voice or self.default_voice
        who = self.caller(principal)
        self.policy.check_speak(who, text, voice_id, spoken_chars=spoken_chars, spoken_text=spoken_text)
        return voice_id, who

    def _check_spoken(self, seconds: float) -> None:
        """Refuse speech that has run past the per-call output cap."""
        if seconds > self.settings.max_speech_seconds:
            raise AudioTooLong(
                f"the speech would be longer than {self.settings.max_speech_seconds:g} s; "
                "send less text or a higher speed"
            )

    async def start_speech(
        self,
        text: str,
        *,
        voice: str | None = None,
        speed: float = 1.0,
        deterministic: bool = False,
        principal: Principal | None = None,
        spoken_text: str = "",
        spoken_seconds: float = 0.0,
    ) -> SpeechPlan:
        """Every check a streamed utterance needs, and the voice loaded, before anything is sent.

        For text arriving in pieces, `spoken_text` and `spoken_seconds` are the utterance's earlier
        pieces: the caps and content rules apply to the whole, and only the first piece counts as a
        call.

        Raises:
            TextTooLong, InvalidArgument, VoiceNotFound, and the policy's refusals.
        """
        voice_id, who = self._admit_speech(text, voice, speed, principal, spoken_text)
        self._check_spoken(spoken_seconds)
        options = SynthesisOptions(
            speed=speed, deterministic=deterministic or self.settings.deterministic_speech
        )
        chunks = await anyio.to_thread.run_sync(lambda: self.synthesizer.synthesize(text, voice_id, options))
        first = not spoken_text
        return SpeechPlan(chunks, voice_id, who, first=first, spoken_seconds=spoken_seconds)

    @asynccontextmanager
    async def stream_speech(
        self, plan: SpeechPlan
    ) -> AsyncIterator[MemoryObjectReceiveStream[SpeechChunk | SpeechError]]:
        """Synthesize a started utterance; the block receives each sentence as soon as it is ready.

        A failure midway arrives as a `SpeechError` item, after which the stream ends. Leaving the
        block early (the listener went away, or barged in) stops synthesis at the next sentence and
        frees the slot. Enter and leave it in the same task.
        """
        send, receive = anyio.create_memory_object_stream[SpeechChunk | SpeechError](max_buffer_size=1)

        def work() -> float:
            total = 0.0
            for chunk in self._scheduled(plan.chunks, first=plan.first):
                total += chunk.audio.duration
                self._check_spoken(plan.spoken_seconds + total)
                try:
                    anyio.from_thread.run(send.send, chunk)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break  # the listener is gone: stop at this sentence
            return total

        async def produce() -> None:
            async with send:
                try:
                    spoken = await self._run(
                        self.synthesis, work, self.settings.speak_timeout_seconds, "speak"
                    )
                except SpeechError as exc:
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(exc)
                    return
                self.metrics.audio_seconds.labels("out").inc(spoken)
                self.policy.record_audio(plan.principal, spoken)

        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(produce)
            try:
                yield receive
            finally:
                tg.cancel_scope.cancel()

    def _scheduled(self, chunks: Iterator[SpeechChunk], first: bool) -> Iterator[SpeechChunk]:
        """In a worker thread: each sentence of `chunks` synthesized under a sentence slot (the first
        one ahead of other calls' later sentences when `first`), stopping when the call is cancelled."""
        while True:
            anyio.from_thread.run(
                self.sentences.acquire, SentenceSlots.FIRST if first else SentenceSlots.LATER
            )
            try:
                chunk = next(chunks, None)
            finally:
                anyio.from_thread.run_sync(self.sentences.release)
            if chunk is None:
                return
            anyio.from_thread.check_cancelled()
            first = False
            yield chunk

    async def transcribe(
        self,
        data: bytes,
        *,
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        progress: Progress | None = None,
        principal: Principal | None = None,
    ) -> Transcript:
        """Decode `data` within the audio bounds and recognise it.

        Raises:
            PayloadTooLarge, UnsupportedMedia, DecodeFailed, AudioTooLong, InvalidArgument: bad input.
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """
        options = RecognitionOptions(
            language=language, word_timestamps=word_timestamps, initial_prompt=prompt
        )
        self.recognizer.check_options(options)
        who = self.caller(principal)
        cap = self.policy.check_transcribe(who)
        limits = self.audio_limits
        if cap is not None and cap < limits.max_seconds:
            limits = limits.model_copy(update={"max_seconds": cap})

        def hook(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()
            if progress is not None:
                anyio.from_thread.run(progress, done, total, f"{done:.1f} of {total:.1f} s")

        def work() -> Transcript:
            decoded = decode_audio(data, limits, ASR_RATE)
            anyio.from_thread.check_cancelled()
            return self.recognizer.transcribe(decoded.audio, options, hook)

        started = time.perf_counter()
        timeout = self.settings.transcribe_timeout_seconds
        transcript = await self._run(self.recognition, work, timeout, "transcribe")
        self.metrics.audio_seconds.labels("in").inc(transcript.duration)
        self.policy.record_audio(who, transcript.duration)
        logger.info(
            "transcribe done",
            extra={"audio_s": round(transcript.duration, 3), "language": transcript.language,
                   "latency_s": round(time.perf_counter() - started, 3)},
        )  # fmt: skip
        return transcript

    async def recognize(
        self, audio: Audio, options: RecognitionOptions, *, principal: Principal, final: bool
    ) -> Transcript:
        """Recognise 16 kHz audio already in hand (a live utterance); a final result counts against
        the caller's audio quota, a partial one does not (its audio is counted with the final).

        Raises:
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """

        def stop_if_cancelled(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()

        def work() -> Transcript:
            return self.recognizer.transcribe(audio, options, stop_if_cancelled)

        timeout = self.settings.transcribe_timeout_seconds
        transcript = await self._run(self.recognition, work, timeout, "transcribe")
        if final:
            self.metrics.audio_seconds.labels("in").inc(audio.duration)
            self.policy.record_audio(principal, audio.duration)
        return transcript

    async def _run(self, admission: Admission, work: Callable[[], T], deadline_s: float, what: str) -> T:
        """Run `work` in a thread once admitted, within `deadline_s` seconds of the call's start;
        counted in flight meanwhile, whichever surface asked."""
        self.in_flight += 1
        try:
            with anyio.fail_after(deadline_s):
                async with admission.slot():
                    return await anyio.to_thread.run_sync(work)
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"{what} did not finish within {deadline_s:g} s and was stopped; retry with less input"
            ) from exc
        finally:
            self.in_flight -= 1
