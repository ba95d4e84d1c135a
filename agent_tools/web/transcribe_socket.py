"""`/v1/transcribe/ws`: live transcription of a stream of PCM16 frames.

The client opens the socket with the frames' `sample_rate` (and optionally `language`, the
endpointing thresholds and `partial_interval_ms`) as query parameters, then sends binary frames of
mono little-endian PCM16, and `{"type": "end"}` when the stream is over. The server sends `ready`;
per utterance `speech_started`, `partial` (re-decoded every `partial_interval_ms` of new audio),
`speech_stopped` and `final` (text, words with stream times, language); and `done` after `end`.
Voice activity comes from the Silero VAD model faster-whisper ships. Every buffer is bounded: one
open utterance (at most `max_utterance_seconds`), a few utterances waiting for decoding, and the
caller's audio cap over the whole connection. A client silent for the socket timeout is closed
with `timeout`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.web.sockets import SocketGate, SocketSession
from policies import Principal
from speech_backend import Audio, AudioTooLong, InvalidArgument, PayloadTooLarge, RecognitionOptions
from speech_backend.endpointing import Endpointer, EndpointSettings, SpeechStarted, SpeechStopped
from speech_backend.resample import StreamResampler
from speech_backend.vad import VAD_RATE, VadSession

MAX_FRAME_SECONDS = 2.0
MAX_WAITING_UTTERANCES = 4


class TranscribeParams(EndpointSettings):
    """Query parameters of `/v1/transcribe/ws`, fixed for the connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(16000, ge=8000, le=48000, description="Rate of the PCM16 frames sent.")
    language: str | None = Field(None, description="Language hint; omitted, English-only models use en.")
    partial_interval_ms: int = Field(
        750, ge=0, le=10_000, description="New audio between partial results; 0 sends none."
    )
    word_timestamps: bool = Field(True, description="Words with their times in each `final`.")

    def endpointing(self) -> EndpointSettings:
        """The endpointing thresholds alone."""
        return EndpointSettings.model_validate(self.model_dump(include=set(EndpointSettings.model_fields)))


class EndMessage(BaseModel):
    """The stream is over: finish the open utterance and say `done`."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern="^end$")


@dataclass(frozen=True)
class Job:
    """Audio of one utterance to decode, partially (so far) or finally (all of it)."""

    utterance: int
    audio: Audio
    start: float
    end: float
    final: bool
    stopped_at: float = 0.0


class TranscribeSocket:
    """The `/v1/transcribe/ws` endpoint; loads the VAD model once, on first use."""

    def __init__(self, runtime: Runtime, gate: SocketGate) -> None:
        self.runtime = runtime
        self.gate = gate
        self._vad: VadSession | None = None

    def routes(self) -> list[BaseRoute]:
        """The route, to mount before the MCP ones."""
        return [WebSocketRoute("/v1/transcribe/ws", self.endpoint)]

    async def endpoint(self, websocket: WebSocket) -> None:
        """Admit the client, then transcribe its stream until it ends or leaves."""
        await self.gate.serve(websocket, "transcribe", self._session)

    async def _session(self, session: SocketSession, principal: Principal | None) -> None:
        websocket = session.websocket
        params = TranscribeParams.model_validate(dict(websocket.query_params))
        service = self.runtime.require()
        options = RecognitionOptions(language=params.language, word_timestamps=params.word_timestamps)
        service.recognizer.check_options(options)
        who = service.caller(principal)
        cap = service.policy.check_transcribe(who)
        if self._vad is None:
            self._vad = await anyio.to_thread.run_sync(VadSession)
        live = LiveTranscription(service, session, who, params, Endpointer(self._vad, params.endpointing()))
        live.max_seconds = min(cap or np.inf, service.audio_limits.max_seconds)
        await session.send({"type": "ready", "sample_rate": params.sample_rate, "vad": "silero",
                            **params.endpointing().model_dump()})  # fmt: skip
        await live.run()


class LiveTranscription:
    """One connection's stream: frames in, endpointing, decoding in order, events out."""

    def __init__(
        self,
        service: SpeechService,
        session: SocketSession,
        who: Principal,
        params: TranscribeParams,
        endpointer: Endpointer,
    ) -> None:
        self.service = service
        self.session = session
        self.who = who
        self.params = params
        self.endpointer = endpointer
        self.resampler = StreamResampler(params.sample_rate, VAD_RATE)
        self.max_seconds = float(service.audio_limits.max_seconds)
        self.received_seconds = 0.0
        self.finals: deque[Job] = deque()
        self.partial: Job | None = None
        self.final_ready = anyio.Event()
        self.partial_ready = anyio.Event()
        self.space = anyio.Event()
        self.ended = False
        self.last_partial_at = 0.0
        self.final_count = 0
        self.decoded_seconds = 0.0

    async def run(self) -> None:
        """Read frames until `end`, decode what is left, then say `done`.

        Raises:
            ClientGone, DeadlineExceeded (silent client), InvalidArgument, PayloadTooLarge,
            AudioTooLong (over the caller's cap), and decoding failures.
        """
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._final_loop)
            tg.start_soon(self._partial_loop)
            try:
                await self._read()
            except Exception as exc:  # ends the connection once decoding has stopped
                failure = exc
                tg.cancel_scope.cancel()
            self.ended = True
            self.final_ready.set()
            self.partial_ready.set()
        if failure is not None:
            raise failure
        await self.session.send({"type": "done", "utterances": self.final_count,
                                 "audio_seconds": round(self.received_seconds, 3)})  # fmt: skip

    async def _read(self) -> None:
        rate = self.params.sample_rate
        max_bytes = int(rate * MAX_FRAME_SECONDS) * 2
        while True:
            frame = await self.session.receive('stream PCM16 frames, or send {"type": "end"}')
            if isinstance(frame, str):
                EndMessage.model_validate_json(frame)
                await self._handle(await anyio.to_thread.run_sync(self._finish))
                return
            if len(frame) % 2 or len(frame) > max_bytes:
                if len(frame) > max_bytes:
                    raise PayloadTooLarge(
                        f"frames hold at most {MAX_FRAME_SECONDS:g} s of audio; send smaller ones"
                    )
                raise InvalidArgument("a frame has an odd number of bytes; send whole 16-bit samples")
            self.received_seconds += len(frame) / 2 / rate
            self.session.audio_seconds = self.received_seconds
            if self.received_seconds > self.max_seconds:
                raise AudioTooLong(
                    f"the stream is over the limit of {self.max_seconds:g} s of audio; open a new connection"
                )
            events = await anyio.to_thread.run_sync(self._push, frame)
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
                await self.session.send({"type": "speech_started", "utterance": event.utterance,
                                         "start": round(event.start, 3)})  # fmt: skip
                continue
            stopped = {"type": "speech_stopped", "utterance": event.utterance, "start": event.start,
                       "end": event.end, "forced": event.forced}  # fmt: skip
            await self.session.send(stopped)
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
        start = now - audio.duration
        self.partial = Job(self.endpointer.utterance_count, audio, start, now, False)
        self.partial_ready.set()

    async def _final_loop(self) -> None:
        """Finals in order, each as soon as its utterance stops (beside any partial decoding)."""
        while True:
            while not self.finals:
                if self.ended:
                    return
                self.final_ready = anyio.Event()
                await self.final_ready.wait()
            job = self.finals[0]
            await self._decode(job)
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

    async def _decode(self, job: Job) -> None:
        options = RecognitionOptions(
            language=self.params.language,
            word_timestamps=job.final and self.params.word_timestamps,
            beam_size=None if job.final else 1,
        )
        transcript = await self.service.recognize(job.audio, options, principal=self.who, final=job.final)
        policy = self.service.policy
        text = policy.redact_text(self.who, transcript.text)
        if not job.final:
            if job.utterance == self.endpointer.utterance_count and self.endpointer.in_speech:
                await self.session.send({"type": "partial", "utterance": job.utterance, "text": text})
            return
        self.final_count += 1
        event: dict[str, Any] = {
            "type": "final",
            "utterance": job.utterance,
            "text": text,
            "start": job.start,
            "end": job.end,
            "language": transcript.language,
            "latency_ms": round((time.perf_counter() - job.stopped_at) * 1000),
            "untrusted_content": True,
        }
        if self.params.word_timestamps:
            event["words"] = [
                {"word": policy.redact_word(self.who, w.text), "start": round(job.start + w.start, 3),
                 "end": round(job.start + w.end, 3), "probability": round(w.probability, 3)}
                for w in transcript.words
            ]  # fmt: skip
        await self.session.send(event)
