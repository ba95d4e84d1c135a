"""OpenAI-compatible routes beside speech (`openai_speech`): `/v1/audio/transcriptions`, `/v1/models`,
`/v1/audio/voices`. They translate OpenAI's shapes to the core's use cases and back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from agent_tools.core.runtime import Runtime
from agent_tools.core.sources import AudioSource
from agent_tools.core.subtitles import TranscriptFormat, render
from agent_tools.tools.schemas import VoiceInfo
from agent_tools.web.openai_speech import OPENAI_SPEECH_MODELS
from agent_tools.web.route_boundary import ApiRoute, principal, while_connected
from speech_backend import InvalidArgument, PayloadTooLarge, Transcript

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MAX_FORM_FIELD_BYTES = 64 * 1024  # a form field other than the file (prompt, language, ...)


class OpenAIRoutes:
    """The OpenAI-compatible routes over one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def api(self) -> list[ApiRoute]:
        """Each route, with the tool its audit lines name."""
        return [
            ApiRoute("/v1/audio/transcriptions", "POST", self.transcriptions, "transcribe"),
            ApiRoute("/v1/models", "GET", self.models, "list_models"),
            ApiRoute("/v1/audio/voices", "GET", self.voices, "list_voices"),
        ]

    async def transcriptions(self, request: Request) -> Response:
        """OpenAI `audio.transcriptions.create` (multipart upload)."""
        who = principal(request)
        service = self.runtime.service
        data, fields, granularities = await self._upload(request, service.require().audio_limits.max_bytes)
        fmt = fields.get("response_format", "json")
        if fmt not in TRANSCRIPT_FORMATS:
            raise InvalidArgument(f"response_format must be one of {', '.join(TRANSCRIPT_FORMATS)}")
        words = "word" in granularities
        heard = await while_connected(
            request,
            lambda: service.transcribe(
                AudioSource(data=data),
                language=fields.get("language") or None,
                word_timestamps=words,
                prompt=fields.get("prompt") or None,
                principal=who,
                request_id=request.state.request_id,
                transport="http",
            ),
        )
        transcript, headers = heard.transcript, heard.cost.headers()
        request.state.audio_seconds = transcript.duration
        if fields.get("stream", "false").lower() in ("true", "1"):
            return EventSourceResponse(_transcript_events(transcript), ping=15, headers=headers)
        if fmt == "json":
            return JSONResponse({"text": transcript.text}, headers=headers)
        if fmt == "verbose_json":
            return JSONResponse(_verbose(transcript, words), headers=headers)
        return PlainTextResponse(render(transcript, cast(TranscriptFormat, fmt)), headers=headers)

    async def _upload(self, request: Request, limit: int) -> tuple[bytes, dict[str, str], list[Any]]:
        """The file, the text fields and the timestamp granularities of a multipart upload."""
        try:
            form = await request.form(max_files=1, max_fields=16, max_part_size=MAX_FORM_FIELD_BYTES)
        except (HTTPException, MultiPartException) as exc:
            detail = exc.detail if isinstance(exc, HTTPException) else exc.message
            raise InvalidArgument(
                f"the multipart body is invalid ({str(detail).rstrip('.')}); send one file in the field "
                f"'file' and at most 15 other fields of up to {MAX_FORM_FIELD_BYTES // 1024} KiB"
            ) from exc
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidArgument("send the audio as the multipart field 'file'")
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"the audio is over the limit of {limit} bytes")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            return data, fields, form.getlist("timestamp_granularities[]")
        finally:
            await form.close()

    async def models(self, request: Request) -> Response:
        """The models: the speech aliases and the loaded recognizer (whisper-1 is its alias)."""
        principal(request)
        recognizer = self.runtime.service.require().recognizer
        ids = [*OPENAI_SPEECH_MODELS, recognizer.model_id, "whisper-1"]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "speech-tools"} for i in ids]
        return JSONResponse({"object": "list", "data": data})

    async def voices(self, request: Request) -> Response:
        """The catalog, as list_voices returns it."""
        service = self.runtime.service
        voices = [VoiceInfo.of(v).model_dump() for v in await service.voices(principal=principal(request))]
        return JSONResponse({"voices": voices, "default_voice": service.require().default_voice})


async def _transcript_events(transcript: Transcript) -> AsyncIterator[dict[str, str]]:
    """OpenAI's streamed transcription events: a `transcript.text.delta` per segment, then
    `transcript.text.done` with the whole text (the deltas join to it)."""
    for i, segment in enumerate(transcript.segments):
        delta = (" " if i else "") + segment.text.strip()
        yield {"data": json.dumps({"type": "transcript.text.delta", "delta": delta})}
    yield {"data": json.dumps({"type": "transcript.text.done", "text": transcript.text})}


def _verbose(transcript: Transcript, words: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [
            {
                "id": i,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(transcript.segments)
        ],
        "untrusted_content": True,
    }
    if words:
        body["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in transcript.words
        ]
    return body
