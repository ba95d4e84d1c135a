"""OpenAI's `POST /v1/audio/speech`, progressive: every format is encoded as the sentences are made,
so the first bytes leave after the first sentence — as a plain audio stream, or as OpenAI's SSE
events (`speech.audio.delta` carrying the requested format, then `speech.audio.done`).

`instructions` (OpenAI's style prompt) are accepted and not applied: the voices have no styles; the
response says so in `x-speech-instructions: ignored`. OpenAI's voice names speak with distinct voices
(`SERVICE__OPENAI_VOICES`), and `x-speech-voice` names the voice that spoke. A failure after the
first byte (the speech cap reached midway, say) ends the stream early: the status line has already
gone; an SSE stream sends an `error` event instead.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from agent_tools.core.errors import error_body
from agent_tools.core.outputs import SpeechFrames
from agent_tools.core.requests import SampleRate, SpeakText, Speed, VoiceId
from agent_tools.core.runtime import Runtime
from agent_tools.core.streams import SpeechPlan
from agent_tools.settings import OPENAI_VOICES
from agent_tools.web.route_boundary import ApiRoute, json_body, on_response_end, principal
from speech_backend import InvalidArgument, output_rate, synthetic_metadata
from speech_backend.audio.stream_encode import STREAM_MIME_TYPES, StreamEncoder

logger = logging.getLogger(__name__)

OPENAI_SPEECH_MODELS = ("piper", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_PCM_RATE = 24000


class SpeechRequest(BaseModel):
    """The body of `POST /v1/audio/speech` (OpenAI's shape)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "piper"
    input: SpeakText
    voice: VoiceId | None = None
    instructions: str | None = Field(
        None, max_length=4096, description="Accepted; the voices have no styles."
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Speed = 1.0  # OpenAI's 0.25 to 4.0 is wider than the voices go
    sample_rate: Annotated[
        SampleRate | None,
        Field(description="Not in OpenAI's API: the output rate (default: 24000 for pcm, else the voice's)."),
    ] = None
    stream_format: Literal["audio", "sse"] = "audio"


class OpenAISpeechRoute:
    """`/v1/audio/speech` over one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def api(self) -> list[ApiRoute]:
        """The route, with the tool its audit lines name."""
        return [ApiRoute("/v1/audio/speech", "POST", self.speech, "speak")]

    async def speech(self, request: Request) -> Response:
        """OpenAI `audio.speech.create`: the audio as it is made, or OpenAI's SSE events."""
        body = SpeechRequest.model_validate(await json_body(request))
        if body.model not in OPENAI_SPEECH_MODELS:
            raise InvalidArgument(
                f"unknown model {body.model!r}; use one of {', '.join(OPENAI_SPEECH_MODELS)}"
            )
        voice = self._voice(body.voice)
        request.state.chars = len(body.input)
        frames = SpeechFrames()
        # every check (policy, caps, voice, a synthesis slot) happens here, before the status line
        plan = await self.runtime.streams.start(
            body.input, voice=voice, speed=body.speed, principal=principal(request), cost=frames.cost
        )
        on_response_end(request, plan.slot.release)
        rate = self.runtime.service.require().voice(plan.voice).sample_rate
        output_rate(body.response_format, rate, body.sample_rate)  # a rate the codec takes, or refused now
        headers = {
            "x-synthetic-speech": "true",
            "x-request-id": request.state.request_id,
            "x-speech-voice": plan.voice,
        }
        if body.instructions:
            headers["x-speech-instructions"] = "ignored"
        if body.stream_format == "sse":
            return EventSourceResponse(self._events(plan, body, request, frames), ping=15, headers=headers)
        media_type = STREAM_MIME_TYPES[body.response_format]
        return StreamingResponse(
            self._audio(plan, body, request, frames), media_type=media_type, headers=headers
        )

    def _voice(self, name: str | None) -> str | None:
        """The catalogue voice an OpenAI voice name stands for (None: the default voice); any other
        name is a catalogue id, checked as such."""
        if name not in OPENAI_VOICES:  # (every stock name, whatever the mapping configured)
            return name
        mapped = self.runtime.settings.service.openai_voices.get(name)
        voices = {v.id for v in self.runtime.service.require().synthesizer.voices()}
        return mapped if mapped in voices else None

    async def _encoded(
        self, plan: SpeechPlan, body: SpeechRequest, request: Request, frames: SpeechFrames
    ) -> AsyncIterator[bytes]:
        """The requested format's bytes as each sentence is made (a failure midway is raised)."""
        streams = self.runtime.streams
        rate = body.sample_rate or (OPENAI_PCM_RATE if body.response_format == "pcm" else None)
        engine = streams.service.require().voice(plan.voice).engine
        tracing = streams.service.tracing
        encoder: StreamEncoder | None = None
        async with streams.frames(plan, frames, "openai_speech") as receive:
            async for item in receive:
                if isinstance(item, Exception):
                    raise item
                if encoder is None:
                    marker = synthetic_metadata(plan.voice, engine)
                    encoder = StreamEncoder(body.response_format, item.sample_rate, rate, marker)
                with tracing.span("encode", {"speech.format": body.response_format}):
                    data = await anyio.to_thread.run_sync(encoder.push, item.sentence_audio)
                frames.sent(item)
                request.state.audio_seconds = frames.audio_seconds
                if data:
                    yield data
        if encoder is not None:
            with tracing.span("encode", {"speech.format": body.response_format}):
                last = await anyio.to_thread.run_sync(encoder.close)
            if last:
                yield last

    async def _audio(
        self, plan: SpeechPlan, body: SpeechRequest, request: Request, frames: SpeechFrames
    ) -> AsyncIterator[bytes]:
        try:
            async for data in self._encoded(plan, body, request, frames):
                yield data
        except Exception as exc:  # the status line is gone: end the stream; the audit line says why
            request.state.stream_error = exc
            logger.warning("speech stream ended early", extra={"request_id": request.state.request_id})

    async def _events(
        self, plan: SpeechPlan, body: SpeechRequest, request: Request, frames: SpeechFrames
    ) -> AsyncIterator[dict[str, str]]:
        try:
            async for data in self._encoded(plan, body, request, frames):
                delta = base64.b64encode(data).decode()
                yield {"data": json.dumps({"type": "speech.audio.delta", "audio": delta})}
        except Exception as exc:  # after the first event: an error event ends the stream
            request.state.stream_error = exc
            error = error_body(exc, request.state.request_id)
            yield {"data": json.dumps({"type": "error", "error": error})}
            return
        yield {"data": json.dumps({"type": "speech.audio.done", "cost": frames.summary()["cost"]})}
