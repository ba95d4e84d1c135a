"""The speech service: the one async boundary between callers and the blocking engines.

Bounds are checked before any engine work; engine work runs in worker threads behind a capacity
limiter per engine, and checks for cancellation between sentences and segments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import numpy as np

from agent_tools.settings import ServiceSettings, Settings
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
# Called with (done, total or None when unknown, message) as long work advances.
Progress = Callable[[float, float | None, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class SentenceTiming:
    """Where one sentence of the spoken text sits in the audio."""

    text: str
    start: float
    end: float


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

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Always refuses."""
        raise BackendUnavailable("recognition is not loaded in this process; start it with transcription on")


class SpeechService:
    """Speak and transcribe with bounded, cancellable engine work off the event loop."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        recognizer: Recognizer,
        settings: ServiceSettings,
        audio_limits: AudioLimits,
        default_voice: str,
    ) -> None:
        self.synthesizer = synthesizer
        self.recognizer = recognizer
        self.settings = settings
        self.audio_limits = audio_limits
        self.default_voice = default_voice
        self._synthesis = anyio.CapacityLimiter(settings.synthesis_slots)
        self._recognition = anyio.CapacityLimiter(settings.recognition_slots)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, speak: bool = True, transcribe: bool = True
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
        return cls(synthesizer, recognizer, settings.service, engines.audio, engines.piper.default_voice)

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        """Catalog voices, optionally only those whose language starts with `language` (`en`, `en_US`)."""
        voices = self.synthesizer.voices()
        if language is None:
            return voices
        wanted = language.replace("-", "_").lower()
        return tuple(v for v in voices if v.language.lower().startswith(wanted))

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
    ) -> Speech:
        """Synthesize `text` and encode it.

        Raises:
            TextTooLong: over the character cap (checked before any synthesis).
            AudioTooLong: the speech would run past the output cap.
            InvalidArgument, VoiceNotFound: bad arguments.
        """
        if len(text) > self.settings.max_text_chars:
            raise TextTooLong(
                f"text is {len(text)} characters, over the limit of {self.settings.max_text_chars}; "
                "split it into several calls"
            )
        voice_id = voice or self.default_voice
        fmt = fmt or self.settings.default_format
        options = SynthesisOptions(speed=speed, deterministic=deterministic)

        def work() -> tuple[list[SpeechChunk], int]:
            chunks: list[SpeechChunk] = []
            total = 0.0
            iterator = self.synthesizer.synthesize(text, voice_id, options)
            for chunk in iterator:
                anyio.from_thread.check_cancelled()
                chunks.append(chunk)
                total += chunk.audio.duration
                if total > self.settings.max_speech_seconds:
                    raise AudioTooLong(
                        f"the speech would be longer than {self.settings.max_speech_seconds:g} s; "
                        "send less text or a higher speed"
                    )
                if progress is not None:
                    anyio.from_thread.run(
                        progress, float(len(chunks)), None, f"sentence {len(chunks)} spoken"
                    )
            rate = chunks[0].audio.sample_rate if chunks else 0
            return chunks, rate

        started = time.perf_counter()
        chunks, rate = await anyio.to_thread.run_sync(work, limiter=self._synthesis)
        if not chunks:
            raise InvalidArgument("text has nothing to speak: send at least one word")
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), rate)
        engine = getattr(self.synthesizer, "engine", "unknown")
        data = await anyio.to_thread.run_sync(
            lambda: encode_audio(audio, fmt, sample_rate, synthetic_metadata(voice_id, engine))
        )
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
            engine=str(engine),
            sentences=tuple(SentenceTiming(c.text, round(c.start, 3), round(c.end, 3)) for c in chunks),
        )

    async def transcribe(
        self,
        data: bytes,
        *,
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        progress: Progress | None = None,
    ) -> Transcript:
        """Decode `data` within the audio bounds and recognise it.

        Raises:
            PayloadTooLarge, UnsupportedMedia, DecodeFailed, AudioTooLong, InvalidArgument: bad input.
        """
        decoded = await anyio.to_thread.run_sync(lambda: decode_audio(data, self.audio_limits, ASR_RATE))
        options = RecognitionOptions(
            language=language, word_timestamps=word_timestamps, initial_prompt=prompt
        )

        def hook(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()
            if progress is not None:
                anyio.from_thread.run(progress, done, total, f"{done:.1f} of {total:.1f} s")

        def work() -> Transcript:
            return self.recognizer.transcribe(decoded.audio, options, hook)

        started = time.perf_counter()
        transcript = await anyio.to_thread.run_sync(work, limiter=self._recognition)
        logger.info(
            "transcribe done",
            extra={"audio_s": round(transcript.duration, 3), "language": transcript.language,
                   "latency_s": round(time.perf_counter() - started, 3)},
        )  # fmt: skip
        return transcript
