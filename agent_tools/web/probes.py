"""The plain routes beside the API: liveness, readiness, metrics and audio downloads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent_tools.core.audio_store import open_clip
from agent_tools.core.errors import error_body, http_status
from agent_tools.core.runtime import Runtime, new_request_id
from speech_errors import ContractError


class Probes:
    """`/healthz` (live), `/readyz` (every model loaded, audit writable), `/metrics`, `/audio/{id}`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self) -> list[BaseRoute]:
        """The routes, to mount before the MCP ones."""
        return [
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics),
            Route("/audio/{clip_id}", self.audio),
        ]

    async def healthz(self, request: Request) -> JSONResponse:
        """Live: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        """Ready: not draining, every model is loaded (voice, recognizer, voice activity) and audit
        lines can be written."""
        runtime = self.runtime
        if runtime.scheduler.closed:  # draining: a load balancer should send new calls elsewhere
            return JSONResponse({"status": "not_ready", "reason": "draining"}, status_code=503)
        engines = runtime.engines.loaded
        if engines is None:
            reason = runtime.engines.error or "loading"
            return JSONResponse({"status": "not_ready", "reason": reason}, status_code=503)
        if not await engines.is_serving():
            return JSONResponse({"status": "not_ready", "reason": "engine_pool_unavailable"}, status_code=503)
        if not runtime.policy.audit_writable:
            return JSONResponse({"status": "not_ready", "reason": "audit_unwritable"}, status_code=503)
        body = {
            "status": "ready",
            "voice": engines.default_voice,
            "recognizer": engines.recognizer.model_id,
            "vad": "silero" if engines.vad is not None else None,
        }
        return JSONResponse(body)

    async def metrics(self, request: Request) -> Response:
        """Prometheus text, with queue gauges sampled now."""
        runtime = self.runtime
        runtime.scheduler.sample()
        runtime.metrics.sample_audit(runtime.policy)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def audio(self, request: Request) -> Response:
        """The raw bytes behind an `audio://` handle, while it lives."""
        request_id = new_request_id()
        try:
            clip = await open_clip(
                self.runtime.store,
                self.runtime.policy,
                request.path_params["clip_id"],
                request.state.principal,
                request_id=request_id,
                transport="http",
            )
        except ContractError as exc:
            body = error_body(exc, request_id)
            return JSONResponse({"error": body}, status_code=http_status(body["code"], exc))
        return Response(clip.data, media_type=clip.mime_type, headers={"cache-control": "no-store"})
