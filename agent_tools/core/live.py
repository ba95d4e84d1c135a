"""Live transcription of a stream of PCM16 frames, free of any socket: frames in, events out.

Utterances end at pauses (Silero VAD, per frame under the voice-activity admission), when the turn
model judges the speaker done (semantic), or where the client commits (manual); a client can also
end the open utterance early (commit) or drop it (clear). Finals and partials decode under the
recognition admission (`live_decoding`), finals in order and ahead of any partial. Every buffer is
bounded: one open utterance (`max_utterance_seconds`), a few awaiting decoding, the audio cap.

Nothing owed is dropped: a stream refused midway (over the caller's audio cap, a frame too large, a
server shutting down) first gets the finals of everything heard within the bounds, the open
utterance included, then the refusal; a final that cannot be made (no recognition slot in time)
is answered with an `error` event naming its utterance, and the stream goes on.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import numpy as np

from agent_tools.core.errors import Busy
from agent_tools.core.live_audio import LiveAudio
from agent_tools.core.live_decoding import Emit, LiveDecoder
from agent_tools.core.live_input import NOTHING_TO_COMMIT, WOUND_UP, Control, Frame, Receive, frame_refusal
from agent_tools.core.live_jobs import Job
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.service import SpeechService
from policies import Principal
from speech_backend import RecognitionOptions
from speech_backend.voice_activity.endpointing import (
    CommitSegmenter,
    Endpointer,
    EndpointEvent,
    Segmenter,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from speech_backend.voice_activity.vad import VAD_RATE
from speech_errors import ContractError


async def open_live(
    service: SpeechService,
    params: LiveSettings,
    principal: Principal | None,
    emit: Emit,
    request_id: str = "-",
) -> LiveTranscription:
    """A live transcription for the caller, emitting its events through `emit`, once the policy admits
    it (tool, rate) and the options are ones the recognizer serves; `request_id` names the
    connection in the error events of turns that could not be transcribed.

    Raises:
        Forbidden, RateLimited, InvalidArgument, BackendUnavailable; Busy: shutting down.
    """
    service.scheduler.check_open()
    who, cap = await service.admit_transcription(principal)
    segmenter = segmenter_for(service, params)
    max_seconds = min(cap or np.inf, service.require().audio_limits.max_seconds)
    return LiveTranscription(service, who, params, segmenter, emit, max_seconds, request_id)


def segmenter_for(service: SpeechService, params: LiveSettings) -> Segmenter:
    """What ends utterances under `params`, once the recognizer is known to serve them.

    Raises:
        InvalidArgument: a language the recognizer does not serve.
        BackendUnavailable: the models are not loaded.
    """
    engines = service.require()
    engines.recognizer.check_options(RecognitionOptions(language=params.language))
    if params.noise_reduction is not None:
        engines.require_denoiser()
    if params.turn_detection == "manual":
        return CommitSegmenter(params.max_utterance_seconds)
    judge = engines.turn_judge(params.language) if params.turn_detection == "semantic" else None
    return Endpointer(engines.require_vad(), params.endpointing(), judge)


class LiveTranscription:
    """One stream: frames in, endpointing, decoding in order, events out."""

    def __init__(
        self,
        service: SpeechService,
        who: Principal,
        params: LiveSettings,
        endpointer: Segmenter,
        emit: Emit,
        max_seconds: float,
        request_id: str = "-",
    ) -> None:
        self.service = service
        self.params = params
        self.endpointer = endpointer
        self.audio = LiveAudio(service.require(), params)
        self.emit = emit
        self.max_seconds = float(max_seconds)
        self.received_seconds = 0.0
        self.decoder = LiveDecoder(service, who, params, emit, self._still_open, request_id)
        self.last_partial_at = 0.0  # in the segmenter's time
        # a segmenter replaced mid-stream (new settings) starts its time and numbering afresh
        self.offset = 0.0  # stream seconds where the segmenter started
        self.base = 0  # utterances numbered before it
        self.announced = 0  # the last utterance whose start was announced
        self.winding_up = False  # the server is shutting down: take no more audio
        self._receiving: anyio.CancelScope | None = None  # the wait for the client's next frame

    @property
    def owes_results(self) -> bool:
        """Whether a turn has ended whose final (or error) the client has not been sent yet: a client
        waiting for it is not idle."""
        return self.decoder.owes_results

    def ready(self) -> dict[str, Any]:
        """The event that says the stream may start, with the settings in force."""
        return {
            "type": "ready",
            "sample_rate": self.params.sample_rate,
            "vad": "silero" if self.params.turn_detection != "manual" else None,
            "turn_detection": self.params.turn_detection,
            "noise_reduction": self.params.noise_reduction,
            **self.params.endpointing().model_dump(),
        }

    async def run(self, receive: Receive) -> None:
        """Read frames until the stream is over, decode what is left, then emit `done`.

        Raises:
            InvalidArgument, PayloadTooLarge, AudioTooLong (over the caller's cap), decoding
            failures, and whatever `receive` or `emit` raise (a client gone, a silent client).
        """
        with self.service.scheduler.live_stream(self._wind_up):
            failure = await self._run(receive)
        if failure is not None:
            raise failure
        await self.emit(
            {
                "type": "done",
                "utterances": self.decoder.final_count,
                "failed": self.decoder.failed_count,
                "audio_seconds": round(self.received_seconds, 3),
            }
        )

    async def _run(self, receive: Receive) -> Exception | None:
        """Read and decode until the stream is over; what ended it early, if anything. A refusal
        (the stream's own bounds, a shutdown) comes after the finals of what was heard within them;
        a client gone, silent or not reading ends it at once."""
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.decoder.final_loop)
            tg.start_soon(self.decoder.partial_loop)
            tg.start_soon(self.decoder.guess_loop)
            try:
                failure = await self._read(receive)
                with contextlib.suppress(Busy):  # the open utterance ends here, if a step is to be had
                    await self._handle(await self._step(self._finish))
            except Exception as exc:  # ends the stream once decoding has stopped
                failure = exc
                tg.cancel_scope.cancel()
            self.decoder.end()
        return failure

    def _wind_up(self) -> None:
        """The server is shutting down: stop waiting for audio, finish what is owed."""
        self.winding_up = True
        if self._receiving is not None:
            self._receiving.cancel()

    async def _next(self, receive: Receive) -> Frame | Busy:
        """The client's next frame, or Busy once the server is shutting down."""
        if not self.winding_up:
            with anyio.CancelScope() as self._receiving:
                try:
                    return await receive()
                finally:
                    self._receiving = None
        return Busy(WOUND_UP, retry_after_ms=1000)

    async def _step(self, work: Callable[[], list[EndpointEvent]]) -> list[EndpointEvent]:
        """A voice-activity step of this stream (served during a drain: the stream was admitted)."""
        scheduler = self.service.scheduler
        return await scheduler.step(scheduler.voice_activity, work, continuing=True)

    def _number(self, utterance: int) -> int:
        return self.base + utterance

    def _still_open(self, utterance: int) -> bool:
        return utterance == self._number(self.endpointer.utterance_count) and self.endpointer.in_speech

    async def _read(self, receive: Receive) -> ContractError | None:
        """Feed frames until the stream is over (None) or refused (why: a frame over a bound, the
        caller's audio cap reached, a shutdown, no voice-activity slot within the queue wait)."""
        try:
            return await self._feed(receive)
        except Busy as exc:
            return exc

    async def _feed(self, receive: Receive) -> ContractError | None:
        while True:
            frame = await self._next(receive)
            if frame is None or isinstance(frame, Busy):
                return frame
            if isinstance(frame, Control):
                await self._control(frame)
                continue
            if isinstance(frame, LiveSettings):
                await self._reconfigure(frame)
                continue
            rate = self.params.sample_rate
            refusal = frame_refusal(frame, rate, self.received_seconds, self.max_seconds)
            if refusal is not None:
                return refusal
            self.received_seconds += len(frame) / 2 / rate
            await self._handle(await self._step(functools.partial(self._push, frame)))
            self._maybe_partial()

    async def _control(self, control: Control) -> None:
        if control is Control.CLEAR:
            dropped = self.endpointer.clear()
            self.decoder.partial = None
            self.decoder.drop_guess()
            utterance = self._number(self.endpointer.utterance_count) if dropped else None
            await self.emit({"type": "cleared", "utterance": utterance})
            return
        events = await self._step(self.endpointer.commit)
        if not events:
            await self.emit({"type": "rejected", "code": "invalid_argument", "message": NOTHING_TO_COMMIT})
        await self._handle(events)

    async def _reconfigure(self, params: LiveSettings) -> None:
        """New settings from here on: a new segmenter takes over the audio the old one held (an open
        utterance goes on under the same number), at the stream time where it was."""
        new = segmenter_for(self.service, params)
        if not self.audio.same_for(params):
            tail = self.audio.flush()
            await self._handle(await self._step(functools.partial(self.endpointer.push, tail)))
            self.audio = LiveAudio(self.service.require(), params)
        old = self.endpointer
        held = old.held()
        self.offset += old.received_seconds - len(held) / VAD_RATE
        self.base += old.utterance_count - (1 if old.in_speech else 0)
        self.endpointer, self.params, self.decoder.params = new, params, params
        self.decoder.drop_guess()
        self.last_partial_at = 0.0
        await self._handle(await self._step(functools.partial(new.push, held)))

    def _push(self, frame: bytes) -> list[EndpointEvent]:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        return self.endpointer.push(self.audio.push(samples))

    def _finish(self) -> list[EndpointEvent]:
        return [*self.endpointer.push(self.audio.flush()), *self.endpointer.finish()]

    async def _handle(self, events: list[EndpointEvent]) -> None:
        for event in events:
            n = self._number(event.utterance)
            if isinstance(event, SpeechPaused):
                self.decoder.guess(n, event.audio)
                continue
            if isinstance(event, SpeechResumed):
                self.decoder.drop_guess()
                continue
            if isinstance(event, SpeechStarted):
                self.last_partial_at = event.start
                if n > self.announced:  # (one carried over to a new segmenter was announced already)
                    self.announced = n
                    start = round(self.offset + event.start, 3)
                    await self.emit({"type": "speech_started", "utterance": n, "start": start})
                continue
            start, end = round(self.offset + event.start, 3), round(self.offset + event.end, 3)
            stopped = {"type": "speech_stopped", "utterance": n, "start": start, "end": end}
            decided = round(self.offset + event.decided, 3)  # (the stream time the end was decided at)
            await self.emit({**stopped, "forced": event.forced, "reason": event.reason, "decided": decided})
            self.service.metrics.turn_ends.labels(event.reason).inc()
            job = Job(n, event.audio, start, end, True, time.perf_counter())
            await self.decoder.add_final(job)  # waits (reading stops) while decoding is behind

    def _maybe_partial(self) -> None:
        interval = self.params.partial_interval_ms / 1000
        if not interval or not self.endpointer.in_speech or self.decoder.finals or self.decoder.guessing:
            return
        now = self.endpointer.seconds
        if now - self.last_partial_at < interval or self.decoder.partial is not None:
            return
        audio = self.endpointer.current()
        if audio is None:
            return
        self.last_partial_at = now
        n = self._number(self.endpointer.utterance_count)
        at = self.offset + now
        self.decoder.want_partial(Job(n, audio, at - audio.duration, at, False))
