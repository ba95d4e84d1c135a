"""Live transcription of a stream of PCM16 frames, free of any socket: frames in, events out.

Voice activity (the Silero VAD model, loaded with the engines) and endpointing run per frame under
the scheduler's voice-activity admission; finals and partials decode under the recognition
admission, finals in order and ahead of any partial. Every buffer is bounded: one open utterance
(at most `max_utterance_seconds`), a few utterances waiting for decoding, and the caller's audio
cap over the whole stream.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import numpy as np

from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.outputs import redacted
from agent_tools.core.service import SpeechService
from policies import Principal
from speech_backend import (
    Audio,
    AudioTooLong,
    InvalidArgument,
    PayloadTooLarge,
    RecognitionOptions,
    Transcript,
)
from speech_backend.endpointing import Endpointer, SpeechStarted, SpeechStopped
from speech_backend.resample import StreamResampler
from speech_backend.vad import VAD_RATE

MAX_FRAME_SECONDS = 2.0
MAX_WAITING_UTTERANCES = 4
Emit = Callable[[dict[str, Any]], Awaitable[None]]
# The next frame of PCM16, or None when the stream is over.
Receive = Callable[[], Awaitable[bytes | None]]


@dataclass(frozen=True)
class Job:
    """Audio of one utterance to decode, partially (so far) or finally (all of it)."""

    utterance: int
    audio: Audio
    start: float
    end: float
    final: bool
    stopped_at: float = 0.0


def open_live(
    service: SpeechService, params: LiveSettings, principal: Principal | None, emit: Emit
) -> LiveTranscription:
    """A live transcription for the caller, emitting its events through `emit`, once the policy admits
    it (tool, rate) and the options are ones the recognizer serves.

    Raises:
        Forbidden, RateLimited, InvalidArgument, BackendUnavailable.
    """
    who = service.caller(principal)
    cap = service.policy.check_transcribe(who)
    engines = service.require()
    options = RecognitionOptions(language=params.language, word_timestamps=params.word_timestamps)
    engines.recognizer.check_options(options)
    endpointer = Endpointer(engines.require_vad(), params.endpointing())
    max_seconds = min(cap or np.inf, engines.audio_limits.max_seconds)
    return LiveTranscription(service, who, params, endpointer, emit, max_seconds)


class LiveTranscription:
    """One stream: frames in, endpointing, decoding in order, events out."""

    def __init__(
        self,
        service: SpeechService,
        who: Principal,
        params: LiveSettings,
        endpointer: Endpointer,
        emit: Emit,
        max_seconds: float,
    ) -> None:
        self.service = service
        self.who = who
        self.params = params
        self.endpointer = endpointer
        self.resampler = StreamResampler(params.sample_rate, VAD_RATE)
        self.emit = emit
        self.max_seconds = float(max_seconds)
        self.received_seconds = 0.0
        self.finals: deque[Job] = deque()
        self.partial: Job | None = None
        self.final_ready = anyio.Event()
        self.partial_ready = anyio.Event()
        self.space = anyio.Event()
        self.ended = False
        self.last_partial_at = 0.0
        self.final_count = 0

    def ready(self) -> dict[str, Any]:
        """The event that says the stream may start, with the settings in force."""
        return {
            "type": "ready",
            "sample_rate": self.params.sample_rate,
            "vad": "silero",
            **self.params.endpointing().model_dump(),
        }

    async def run(self, receive: Receive) -> None:
        """Read frames until the stream is over, decode what is left, then emit `done`.

        Raises:
            InvalidArgument, PayloadTooLarge, AudioTooLong (over the caller's cap), decoding
            failures, and whatever `receive` or `emit` raise (a client gone, a silent client).
        """
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._final_loop)
            tg.start_soon(self._partial_loop)
            try:
                await self._read(receive)
            except Exception as exc:  # ends the stream once decoding has stopped
                failure = exc
                tg.cancel_scope.cancel()
            self.ended = True
            self.final_ready.set()
            self.partial_ready.set()
        if failure is not None:
            raise failure
        await self.emit(
            {"type": "done", "utterances": self.final_count, "audio_seconds": round(self.received_seconds, 3)}
        )

    async def _read(self, receive: Receive) -> None:
        rate = self.params.sample_rate
        max_bytes = int(rate * MAX_FRAME_SECONDS) * 2
        scheduler = self.service.scheduler
        while True:
            frame = await receive()
            if frame is None:
                await self._handle(await scheduler.step(scheduler.voice_activity, self._finish))
                return
            if len(frame) > max_bytes:
                raise PayloadTooLarge(
                    f"frames hold at most {MAX_FRAME_SECONDS:g} s of audio; send smaller ones"
                )
            if len(frame) % 2:
                raise InvalidArgument("a frame has an odd number of bytes; send whole 16-bit samples")
            self.received_seconds += len(frame) / 2 / rate
            if self.received_seconds > self.max_seconds:
                raise AudioTooLong(
                    f"the stream is over the limit of {self.max_seconds:g} s of audio; open a new connection"
                )
            events = await scheduler.step(scheduler.voice_activity, functools.partial(self._push, frame))
            await self._handle(events)
            self._maybe_partial()

    def _push(self, frame: bytes) -> list[SpeechStarted | SpeechStopped]:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        return self.endpointer.push(self.resampler.push(samples))

    def _finish(self) -> list[SpeechStarted | SpeechStopped]:
        tail = self.resampler.push(np.zeros(0, dtype=np.float32), last=True)
        return [*self.endpointer.push(tail), *self.endpointer.finish()]

    async def _handle(self, events: list[SpeechStarted | SpeechStopped]) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                self.last_partial_at = event.start
                await self.emit(
                    {"type": "speech_started", "utterance": event.utterance, "start": round(event.start, 3)}
                )
                continue
            await self.emit(
                {
                    "type": "speech_stopped",
                    "utterance": event.utterance,
                    "start": event.start,
                    "end": event.end,
                    "forced": event.forced,
                }
            )
            while len(self.finals) >= MAX_WAITING_UTTERANCES:  # decoding is behind: stop reading
                self.space = anyio.Event()
                await self.space.wait()
            self.finals.append(
                Job(event.utterance, event.audio, event.start, event.end, True, time.perf_counter())
            )
            self.partial = None
            self.final_ready.set()

    def _maybe_partial(self) -> None:
        interval = self.params.partial_interval_ms / 1000
        if not interval or not self.endpointer.in_speech or self.finals:
            return
        now = self.endpointer.seconds
        if now - self.last_partial_at < interval or self.partial is not None:
            return
        audio = self.endpointer.current()
        if audio is None:
            return
        self.last_partial_at = now
        self.partial = Job(self.endpointer.utterance_count, audio, now - audio.duration, now, False)
        self.partial_ready.set()

    async def _final_loop(self) -> None:
        """Finals in order, each as soon as its utterance stops (beside any partial decoding)."""
        while True:
            while not self.finals:
                if self.ended:
                    return
                self.final_ready = anyio.Event()
                await self.final_ready.wait()
            await self._decode(self.finals[0])
            self.finals.popleft()
            self.space.set()

    async def _partial_loop(self) -> None:
        """The latest partial request, one at a time; a request superseded meanwhile is dropped."""
        while True:
            while self.partial is None:
                if self.ended:
                    return
                self.partial_ready = anyio.Event()
                await self.partial_ready.wait()
            job, self.partial = self.partial, None
            await self._decode(job)

    async def _recognize(self, audio: Audio, options: RecognitionOptions, *, final: bool) -> Transcript:
        """Recognise a live utterance, redacted for the caller; a final result counts against the
        caller's audio quota, a partial one does not (its audio is counted with the final).

        Raises:
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """
        service, scheduler = self.service, self.service.scheduler
        recognizer = service.require().recognizer

        def stop_if_cancelled(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()

        def work() -> Transcript:
            return recognizer.transcribe(audio, options, stop_if_cancelled)

        timeout = service.settings.transcribe_timeout_seconds
        transcript = await scheduler.run(scheduler.recognition, work, timeout, "transcribe")
        if final:
            service.heard(self.who, audio.duration)
        return redacted(transcript, service.policy, self.who)

    async def _decode(self, job: Job) -> None:
        options = RecognitionOptions(
            language=self.params.language,
            word_timestamps=job.final and self.params.word_timestamps,
            beam_size=None if job.final else 1,
        )
        transcript = await self._recognize(job.audio, options, final=job.final)
        if not job.final:
            if job.utterance == self.endpointer.utterance_count and self.endpointer.in_speech:
                await self.emit({"type": "partial", "utterance": job.utterance, "text": transcript.text})
            return
        self.final_count += 1
        event: dict[str, Any] = {
            "type": "final",
            "utterance": job.utterance,
            "text": transcript.text,
            "start": job.start,
            "end": job.end,
            "language": transcript.language,
            "latency_ms": round((time.perf_counter() - job.stopped_at) * 1000),
            "untrusted_content": True,
        }
        if self.params.word_timestamps:
            event["words"] = [
                {
                    "word": w.text,
                    "start": round(job.start + w.start, 3),
                    "end": round(job.start + w.end, 3),
                    "probability": round(w.probability, 3),
                }
                for w in transcript.words
            ]
        await self.emit(event)
