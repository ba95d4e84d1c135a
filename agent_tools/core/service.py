"""The speech use cases every surface calls: `speak`, `transcribe(source)`, `voices`.

Every policy step happens here, once: the caller as the policy now defines it, the tool, the
voice, the caps, the content rules over the whole utterance, rate and quota, source resolution,
redaction. Bounds are checked before any engine work; engine work goes through the scheduler.
Policy steps that count (rates, quotas, clips) run off the event loop: their counters may be in
Redis, and a slow Redis must not stall every other call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import numpy as np

from agent_tools.core.admission import Priority
from agent_tools.core.audio_store import AudioStore, read_clip
from agent_tools.core.cost import Cost, settle
from agent_tools.core.engines import Engines, EngineState
from agent_tools.core.metrics import Metrics
from agent_tools.core.outputs import Heard, SentenceTiming, Speech, chunk_words, redacted
from agent_tools.core.scheduler import Scheduler
from agent_tools.core.sources import AudioSource, source_bytes
from agent_tools.core.speech_limits import SpeechLimits
from agent_tools.settings import ServiceSettings
from policies import Policy, Principal
from speech_backend import (
    MIME_TYPES,
    Audio,
    AudioFormat,
    InvalidArgument,
    RecognitionOptions,
    SpeechChunk,
    SynthesisOptions,
    Transcript,
    Voice,
    VoiceNotFound,
    decode_audio,
    encode_audio,
    output_rate,
    synthetic_metadata,
)
from speech_backend.protocols import RECOGNITION_RATE

logger = logging.getLogger(__name__)

# Called with (done, total or None when unknown, message) as long work advances.
Progress = Callable[[float, float | None, str], Coroutine[Any, Any, None]]


class SpeechService:
    """Speak and transcribe for a caller, with every policy step and bounded engine work."""

    def __init__(
        self,
        engines: EngineState,
        settings: ServiceSettings,
        policy: Policy,
        metrics: Metrics,
        store: AudioStore,
        scheduler: Scheduler,
    ) -> None:
        self.engines = engines
        self.settings = settings
        self.policy = policy
        self.metrics = metrics
        self.store = store
        self.scheduler = scheduler
        self.tracing = scheduler.tracing  # one tracer for the call's every step
        self.limits = SpeechLimits(settings)

    def require(self) -> Engines:
        """The loaded engines, or `backend_unavailable` while they load or after they failed."""
        return self.engines.require()

    def caller(self, principal: Principal | None) -> Principal:
        """The principal a call is made as: the given one as the policy now defines it, else the local one."""
        return self.policy.local() if principal is None else self.policy.resolve(principal)

    async def voices(
        self, language: str | None = None, *, principal: Principal | None = None
    ) -> tuple[Voice, ...]:
        """Catalog voices the caller may use, optionally only those whose language starts with `language`."""
        who = self.caller(principal)
        await anyio.to_thread.run_sync(self.policy.check_list_voices, who)
        voices = tuple(v for v in self.require().synthesizer.voices() if who.may_speak_with(v.id))
        if language is None:
            return voices
        wanted = language.replace("-", "_").lower()
        return tuple(v for v in voices if v.language.lower().startswith(wanted))

    def check_voice(self, voice: str | None) -> str:
        """The voice id to speak with (the default for None), when the catalog has it.

        Raises:
            VoiceNotFound: no such voice (ids only: a voice id is never a path).
        """
        engines = self.require()
        voice_id = engines.voice_id(voice)
        if voice_id not in {v.id for v in engines.synthesizer.voices()}:
            raise VoiceNotFound(
                f"no voice with id {voice_id!r}; list_voices (GET /v1/audio/voices) lists them"
            )
        return voice_id

    async def admit_speech(
        self, text: str, voice: str | None, speed: float, principal: Principal | None, spoken_text: str = ""
    ) -> tuple[str, Principal]:
        """The checks every utterance passes before synthesis: length, speed, voice, caller and policy
        (over the whole utterance: `spoken_text` is what it already had). Returns the voice and caller."""
        spoken_chars = len(spoken_text)
        self.limits.check_text(text, spoken_chars)
        self.limits.check_speed(speed)
        who = self.caller(principal)
        voice_id = self.require().voice_id(voice)
        # the policy first: a caller refused a voice learns nothing of the catalog
        with self.tracing.span(
            "policy", {"enduser.id": who.id, "speech.tool": "speak", "speech.voice": voice_id}
        ):
            await anyio.to_thread.run_sync(
                lambda: self.policy.check_speak(
                    who, text, voice_id, spoken_chars=spoken_chars, spoken_text=spoken_text
                )
            )
        return self.check_voice(voice_id), who

    def synthesis_options(
        self, speed: float, deterministic: bool = False, *, streamed: bool = False
    ) -> SynthesisOptions:
        """How to speak: the speed asked for, without sampling noise when asked or configured; an
        utterance streamed to a listener opens with a short lead-in chunk."""
        return SynthesisOptions(
            speed=speed,
            deterministic=deterministic or self.settings.deterministic_speech,
            lead_in_words=self.settings.lead_in_words if streamed else 0,
        )

    async def spoke(self, who: Principal, seconds: float) -> None:
        """Count audio spoken for `who`."""
        self.metrics.audio_seconds.labels("out").inc(seconds)
        await anyio.to_thread.run_sync(self.policy.record_audio, who, seconds)

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
        voice_id, who = await self.admit_speech(text, voice, speed, principal)
        fmt = fmt or self.settings.default_format
        output_rate(fmt, self.require().voice(voice_id).sample_rate, sample_rate)  # before synthesis
        options = self.synthesis_options(speed, deterministic)
        synthesizer = self.require().synthesizer
        cost = Cost()

        def work() -> list[SpeechChunk]:
            chunks: list[SpeechChunk] = []
            total = 0.0
            sentences = synthesizer.synthesize(text, voice_id, options)
            for chunk in self.scheduler.sentence_by_sentence(sentences, first=True, cost=cost):
                chunks.append(chunk)
                total += chunk.audio.duration
                self.limits.check_spoken(total)
                if progress is not None:
                    anyio.from_thread.run(progress, float(len(chunks)), None, f"sentence {len(chunks)}")
            return chunks

        chunks = await self.scheduler.run(
            self.scheduler.synthesis, work, self.settings.speak_timeout_seconds, "speak", cost=cost
        )
        if not chunks:
            raise InvalidArgument("text has nothing to speak: send at least one word")
        rate = chunks[0].audio.sample_rate
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), rate)
        marker = synthetic_metadata(voice_id, engine := self.require().voice(voice_id).engine)
        with self.scheduler.track(), self.tracing.span("encode", {"speech.format": fmt}):
            # encoding is part of the call a drain waits for
            data = await anyio.to_thread.run_sync(lambda: encode_audio(audio, fmt, sample_rate, marker))
        await self.spoke(who, audio.duration)
        spent = settle(
            cost, audio.duration, self.metrics, "speak", "synthesis", voice=voice_id, chars=len(text)
        )
        return Speech(
            data=data,
            format=fmt,
            mime_type=MIME_TYPES[fmt],
            sample_rate=output_rate(fmt, rate, sample_rate),
            duration=audio.duration,
            voice=voice_id,
            engine=engine,
            sentences=tuple(SentenceTiming(c.text, round(c.start, 3), round(c.end, 3)) for c in chunks),
            words=tuple(w.shifted(c.start) for c in chunks for w in chunk_words(c)),
            owner=who.id,
            cost=spent,
        )

    async def admit_transcription(self, principal: Principal | None) -> tuple[Principal, float | None]:
        """The caller, once the policy admits a transcription (whole file or live), and the most
        seconds of audio it may send (None: no cap of its own).

        Raises:
            Forbidden, RateLimited: refused by policy.
        """
        who = self.caller(principal)
        with self.tracing.span("policy", {"enduser.id": who.id, "speech.tool": "transcribe"}):
            return who, await anyio.to_thread.run_sync(self.policy.check_transcribe, who)

    async def transcribe(
        self,
        source: AudioSource,
        *,
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        progress: Progress | None = None,
        principal: Principal | None = None,
        request_id: str = "-",
        transport: str = "mcp",
    ) -> Heard:
        """Resolve the audio of `source`, decode it within the bounds and recognise it (behind live
        streams' work: a whole file can wait); the transcript comes back as the caller may receive it
        (redacted by policy), with what it cost.

        Raises:
            Forbidden, RateLimited: refused by policy, before any byte is read or decoded.
            UriForbidden: a source this caller may not read.
            PayloadTooLarge, UnsupportedMedia, DecodeFailed, AudioTooLong, InvalidArgument: bad input.
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """
        who, cap = await self.admit_transcription(principal)
        engines = self.require()
        options = RecognitionOptions(
            language=language, word_timestamps=word_timestamps, initial_prompt=prompt
        )
        engines.recognizer.check_options(options)
        limits = engines.audio_limits
        if cap is not None and cap < limits.max_seconds:
            limits = limits.model_copy(update={"max_seconds": cap})
        data = await anyio.to_thread.run_sync(  # a file, a clip in Redis: read off the event loop
            lambda: source_bytes(
                source,
                lambda uri: read_clip(
                    self.store, self.policy, uri, who, request_id=request_id, transport=transport
                ),
                self.settings.file_roots,
                limits.max_bytes,
            )
        )

        def hook(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()
            if progress is not None:
                anyio.from_thread.run(progress, done, total, f"{done:.1f} of {total:.1f} s")

        def work() -> Transcript:
            with self.tracing.span("decode", {"speech.bytes": len(data)}):
                decoded = decode_audio(data, limits, RECOGNITION_RATE)
            anyio.from_thread.check_cancelled()
            with self.tracing.span("recognize", {"speech.audio_seconds": decoded.audio.duration}):
                return engines.recognizer.transcribe(decoded.audio, options, hook)

        cost = Cost()
        timeout = self.settings.transcribe_timeout_seconds
        transcript = await self.scheduler.run(
            self.scheduler.recognition,
            cost.timed(work),
            timeout,
            "transcribe",
            priority=Priority.BATCH,
            cost=cost,
        )
        await self.heard(who, transcript.duration)
        spent = settle(
            cost, transcript.duration, self.metrics, "transcribe", "recognition", language=transcript.language
        )
        return Heard(redacted(transcript, self.policy, who), spent)

    async def heard(self, who: Principal, seconds: float) -> None:
        """Count audio heard for `who`."""
        self.metrics.audio_seconds.labels("in").inc(seconds)
        await anyio.to_thread.run_sync(self.policy.record_audio, who, seconds)
