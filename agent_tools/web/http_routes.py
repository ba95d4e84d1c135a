"""The HTTP data plane beside MCP: streaming speech over SSE and OpenAI-compatible audio routes.

Same service, same policies and tokens, same error objects (with the matching HTTP status).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import error_body, http_status
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.core.subtitles import TranscriptFormat, render
from policies import Principal
from speech_backend import InvalidArgument, PayloadTooLarge, SpeechChunk, VoiceNotFound, resample, to_pcm16

logger = logging.getLogger(__name__)

OPENAI_SPEECH_MODELS = ("piper", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
)
OPENAI_PCM_RATE = 24000
MAX_FORM_FIELD_BYTES = 64 * 1024  # a form field other than the file (prompt, language, ...)
Handler = Callable[[Request], Awaitable[Response]]
# Each route: path, method, the handler's name, and the tool its audit lines name.
_ROUTES = (
    ("/v1/audio/speech", "POST", "speech", "speak"),
    ("/v1/audio/transcriptions", "POST", "transcriptions", "transcribe"),
    ("/v1/models", "GET", "models", "list_models"),
    ("/v1/audio/voices", "GET", "voices", "list_voices"),
    ("/v1/speak/stream", "POST", "speak_stream", "speak"),
)


class SpeechRequest(BaseModel):
    """The body of `POST /v1/audio/speech` (OpenAI's shape)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "piper"
    input: str = Field(min_length=1)
    voice: str | None = None
    instructions: str | None = Field(None, max_length=0, description="Not supported: voices have no styles.")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.5, le=2.0)
    stream_format: Literal["audio", "sse"] = "audio"


class StreamRequest(BaseModel):
    """The body of `POST /v1/speak/stream`."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    voice: str | None = None
    speed: float = Field(1.0, ge=0.5, le=2.0)
    sample_rate: int | None = Field(None, ge=8000, le=48000)


class HttpRoutes:
    """Route handlers over one runtime; each resolves the caller, then asks the service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        """The routes, to mount before the MCP ones."""
        return [
            Route(path, self._guard(getattr(self, handler), tool), methods=[method])
            for path, method, handler, tool in _ROUTES
        ]

    @staticmethod
    def tools() -> list[tuple[str, str]]:
        """Each route's path and the tool its audit lines name."""
        return [(path, tool) for path, _, _, tool in _ROUTES]

    def _guard(self, handler: Handler, tool: str) -> Handler:
        """Every failure becomes the contract's error object with its HTTP status; every call gets
        an audit line (a stream's line says it started, not how it ended)."""

        async def guarded(request: Request) -> Response:
            request_id = new_request_id()
            request.state.request_id = request_id  # a stream's error event carries it too
            started = time.perf_counter()
            try:
                response = await handler(request)
            except ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                error: Exception = InvalidArgument(f"invalid request body: check {', '.join(fields)}")
            except Exception as exc:  # the boundary: one typed error for anything
                error = exc
            else:
                self._audit(request, request_id, tool, None, started)
                return response
            body = error_body(error, request_id)
            self._audit(request, request_id, tool, body, started)
            body["type"] = body["code"]  # OpenAI clients read error.type
            headers = {"www-authenticate": "Bearer"} if body["code"] == "unauthorized" else {}
            if "retry_after_ms" in body:
                headers["retry-after"] = str(max(1, round(body["retry_after_ms"] / 1000)))
            return JSONResponse(
                {"error": body}, status_code=http_status(body["code"], error), headers=headers
            )

        return guarded

    def principal(self, request: Request) -> Principal:
        """The caller, as the guard found it (and kept on the request for its audit line)."""
        return request.state.principal  # type: ignore[no-any-return]

    def _audit(
        self, request: Request, request_id: str, tool: str, error: dict[str, Any] | None, started: float
    ) -> None:
        state = request.state
        audit_call(
            self.runtime.policy, request_id=request_id, principal=getattr(state, "principal", None),
            tool=tool, error=error, seconds=time.perf_counter() - started,
            chars=getattr(state, "chars", None), audio_seconds=getattr(state, "audio_seconds", None),
            transport="http",
        )  # fmt: skip

    async def _json(self, request: Request) -> Any:
        """The JSON body (its size bounded by the guard as it arrives)."""
        body = await request.body()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidArgument("the request body is not valid JSON") from exc
        except RecursionError as exc:
            raise InvalidArgument("the request body nests JSON too deeply; send a flat object") from exc

    async def speech(self, request: Request) -> Response:
        """OpenAI `audio.speech.create`: the whole file, or OpenAI's SSE events of PCM."""
        principal = self.principal(request)
        body = SpeechRequest.model_validate(await self._json(request))
        if body.model not in OPENAI_SPEECH_MODELS:
            raise InvalidArgument(
                f"unknown model {body.model!r}; use one of {', '.join(OPENAI_SPEECH_MODELS)}"
            )
        service = self.runtime.require()
        voice = self._voice(body.voice)
        if body.stream_format == "sse":
            return await self._openai_sse(body, voice, principal, request.state.request_id)
        request.state.chars = len(body.input)
        rate = OPENAI_PCM_RATE if body.response_format == "pcm" else None
        speech = await service.speak(
            body.input,
            voice=voice,
            fmt=body.response_format,
            speed=body.speed,
            sample_rate=rate,
            principal=principal,
        )
        request.state.audio_seconds = speech.duration
        return Response(speech.data, media_type=speech.mime_type, headers={"x-synthetic-speech": "true"})

    def _voice(self, voice: str | None) -> str | None:
        """OpenAI's stock voice names mean the server's default voice; any other id must be in the catalog."""
        if voice is None or voice in OPENAI_VOICES:
            return None
        service = self.runtime.require()
        if voice not in {v.id for v in service.synthesizer.voices()}:
            raise VoiceNotFound(f"no voice with id {voice!r}; GET /v1/audio/voices lists them")
        return voice

    async def _openai_sse(
        self, body: SpeechRequest, voice: str | None, principal: Principal | None, request_id: str
    ) -> Response:
        service = self.runtime.require()
        plan = await service.start_speech(body.input, voice=voice, speed=body.speed, principal=principal)

        async def events() -> AsyncIterator[dict[str, str]]:
            async with service.stream_speech(plan) as receive:
                async for item in receive:
                    if isinstance(item, Exception):
                        yield {"data": json.dumps({"type": "error", "error": error_body(item, request_id)})}
                        return
                    pcm = base64.b64encode(_pcm(item, OPENAI_PCM_RATE)).decode()
                    yield {"data": json.dumps({"type": "speech.audio.delta", "audio": pcm})}
            yield {"data": json.dumps({"type": "speech.audio.done"})}

        return EventSourceResponse(events(), ping=15)

    async def transcriptions(self, request: Request) -> Response:
        """OpenAI `audio.transcriptions.create` (multipart upload)."""
        principal = self.principal(request)
        service = self.runtime.require()
        limit = service.audio_limits.max_bytes
        try:
            form = await request.form(max_files=1, max_fields=16, max_part_size=MAX_FORM_FIELD_BYTES)
        except (HTTPException, MultiPartException) as exc:
            detail = str(getattr(exc, "detail", None) or getattr(exc, "message", ""))
            raise InvalidArgument(
                f"the multipart body is invalid ({detail.rstrip('.')}); send one file in the field 'file' "
                f"and at most 15 other fields of up to {MAX_FORM_FIELD_BYTES // 1024} KiB"
            ) from exc
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidArgument("send the audio as the multipart field 'file'")
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"the audio is over the limit of {limit} bytes")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            granularities = form.getlist("timestamp_granularities[]")
        finally:
            await form.close()
        fmt = fields.get("response_format", "json")
        if fmt not in ("json", "text", "srt", "vtt", "verbose_json"):
            raise InvalidArgument("response_format must be json, text, srt, vtt or verbose_json")
        words = "word" in granularities
        transcript = await service.transcribe(
            data,
            language=fields.get("language") or None,
            word_timestamps=words,
            prompt=fields.get("prompt") or None,
            principal=principal,
        )
        request.state.audio_seconds = transcript.duration
        who = service.caller(principal)
        text = service.policy.redact_text(who, transcript.text)
        if fmt == "json":
            return JSONResponse({"text": text})
        if fmt == "verbose_json":
            return JSONResponse(_verbose(transcript, text, words, service.policy, who))
        redacted = transcript.__class__(
            text, transcript.language, transcript.language_probability, transcript.duration,
            tuple(s.__class__(s.start, s.end, service.policy.redact_text(who, s.text), s.avg_logprob,
                              s.no_speech_prob, s.words) for s in transcript.segments),
        )  # fmt: skip
        chosen: TranscriptFormat = "text" if fmt == "text" else fmt  # type: ignore[assignment]
        return PlainTextResponse(render(redacted, chosen))

    async def models(self, request: Request) -> Response:
        """The models: the speech aliases and the loaded recognizer (whisper-1 is its alias)."""
        self.principal(request)
        service = self.runtime.require()
        ids = [*OPENAI_SPEECH_MODELS, service.recognizer.model_id, "whisper-1"]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "speech-tools"} for i in ids]
        return JSONResponse({"object": "list", "data": data})

    async def voices(self, request: Request) -> Response:
        """The catalog, as list_voices returns it."""
        from agent_tools.tools.schemas import VoiceInfo

        principal = self.principal(request)
        service = self.runtime.require()
        voices = [VoiceInfo.of(v).model_dump() for v in service.voices(principal=principal)]
        return JSONResponse({"voices": voices, "default_voice": service.default_voice})

    async def speak_stream(self, request: Request) -> Response:
        """Speech as SSE: `audio` (base64 PCM16 chunks), `mark` (sentence boundaries), `done`, `error`."""
        principal = self.principal(request)
        body = StreamRequest.model_validate(await self._json(request))
        request.state.chars = len(body.text)
        service = self.runtime.require()
        plan = await service.start_speech(body.text, voice=body.voice, speed=body.speed, principal=principal)
        started = time.perf_counter()

        async def events() -> AsyncIterator[dict[str, str]]:
            delivered: list[str] = []
            offset_ms = 0.0
            sequence = 0
            async with service.stream_speech(plan) as receive:
                async for item in receive:
                    if isinstance(item, Exception):
                        yield {
                            "event": "error",
                            "data": json.dumps(error_body(item, request.state.request_id)),
                        }
                        return
                    rate = body.sample_rate or item.audio.sample_rate
                    mark = {
                        "type": "sentence",
                        "index": item.index,
                        "text": item.text,
                        "offset_ms": round(offset_ms),
                    }
                    yield {"event": "mark", "data": json.dumps(mark)}
                    pcm = _pcm(item, rate)
                    audio = {
                        "sequence": sequence,
                        "sample_rate": rate,
                        "pcm16": base64.b64encode(pcm).decode(),
                    }
                    yield {"event": "audio", "data": json.dumps(audio)}
                    sequence += 1
                    delivered.append(item.text)
                    offset_ms += item.audio.duration * 1000
            done = {
                "sentences": len(delivered),
                "text": " ".join(delivered),
                "audio_ms": round(offset_ms),
                "elapsed_ms": round((time.perf_counter() - started) * 1000),
                "synthetic": True,
            }
            yield {"event": "done", "data": json.dumps(done)}

        return EventSourceResponse(events(), ping=15)


def _pcm(chunk: SpeechChunk, rate: int) -> bytes:
    return to_pcm16(resample(chunk.audio, rate).samples).tobytes()


def _verbose(transcript: Any, text: str, words: bool, policy: Any, who: Principal) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": text,
        "segments": [
            {
                "id": i,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": policy.redact_text(who, s.text),
                "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(transcript.segments)
        ],  # fmt: skip
        "untrusted_content": True,
    }
    if words:
        body["words"] = [
            {"word": policy.redact_word(who, w.text), "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in transcript.words
        ]
    return body
