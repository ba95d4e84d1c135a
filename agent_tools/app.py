"""The ASGI application: MCP over streamable HTTP (`/mcp`) and legacy SSE (`/sse`), plus
`/healthz` (live), `/readyz` (models loaded and answering) and `/metrics` (Prometheus)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent_tools.http_routes import HttpRoutes
from agent_tools.runtime import Runtime
from agent_tools.server import build_server
from agent_tools.sockets import SocketGate
from agent_tools.speak_socket import SpeakSocket
from agent_tools.transcribe_socket import TranscribeSocket
from policies import Unauthorized

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ENVELOPE_BYTES = 1024 * 1024


def transport_security(runtime: Runtime) -> TransportSecuritySettings:
    """Host and Origin checks: loopback names always; configured names besides.

    Raises:
        ValueError: bound beyond loopback with no allowed hosts configured.
    """
    server = runtime.settings.server
    if server.host not in LOOPBACK and not runtime.auth_required:
        raise ValueError(
            f"binding to {server.host} needs bearer tokens: set SPEECH_TOOLS_POLICY_FILE to a policy whose "
            "principals have token_sha256 entries (see policies/examples/multi-tenant.yaml)"
        )
    if server.host not in LOOPBACK and not server.allowed_hosts:
        raise ValueError(
            f"binding to {server.host} needs SPEECH_TOOLS_SERVER__ALLOWED_HOSTS (the Host names clients use)"
        )
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *server.allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *server.allowed_origins]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def body_limit(runtime: Runtime) -> int:
    """The largest request body: the biggest audio, base64-encoded, plus room for the JSON around it."""
    return math.ceil(runtime.settings.engines.audio.max_bytes * 4 / 3) + ENVELOPE_BYTES


def build_app(runtime: Runtime, server: MCPServer | None = None) -> Starlette:
    """The app over `runtime`; when it has no service yet, the models load in the background at start-up."""
    server = server or build_server(runtime)
    security = transport_security(runtime)
    limit = body_limit(runtime)
    streamable = server.streamable_http_app(max_request_body_size=limit, transport_security=security)
    sse = server.sse_app(max_request_body_size=limit, transport_security=security)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg, server.session_manager.run():
            if runtime.service is None:
                tg.start_soon(lambda: anyio.to_thread.run_sync(runtime.load))
            try:
                yield
            finally:
                if runtime.service is not None:
                    runtime.service.shutdown()
                tg.cancel_scope.cancel()
        runtime.policy.close()

    gate = SocketGate(runtime, security)
    routes = [
        *Probes(runtime, security).routes(),
        *HttpRoutes(runtime).routes(),
        *SpeakSocket(runtime, gate).routes(),
        *TranscribeSocket(runtime, gate).routes(),
        *sse.routes,
        *streamable.routes,
    ]
    # The MCP app's own middleware (bearer authentication when the policy has tokens) wraps every route.
    return Starlette(routes=routes, middleware=streamable.user_middleware, lifespan=lifespan)


class Probes:
    """The plain HTTP routes beside MCP: liveness, readiness, metrics and audio downloads."""

    def __init__(self, runtime: Runtime, security: TransportSecuritySettings) -> None:
        self.runtime = runtime
        self.guard = TransportSecurityMiddleware(security)

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
        """Ready: the models are loaded."""
        runtime = self.runtime
        if runtime.service is None:
            return JSONResponse(
                {"status": "not_ready", "reason": runtime.load_error or "loading"}, status_code=503
            )
        return JSONResponse({"status": "ready", "recognizer": runtime.service.recognizer.model_id})

    async def metrics(self, request: Request) -> Response:
        """Prometheus text, with queue gauges sampled now."""
        runtime = self.runtime
        if runtime.service is not None:
            for admission in (runtime.service.synthesis, runtime.service.recognition):
                runtime.metrics.queue_depth.labels(admission.name).set(admission.waiting)
                runtime.metrics.in_use.labels(admission.name).set(admission.in_use)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def audio(self, request: Request) -> Response:
        """The raw bytes behind an `audio://` handle, while it lives."""
        refused = await self.guard.validate_request(request)
        if refused is not None:
            return refused
        if self.runtime.auth_required:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            try:
                self.runtime.policy.authenticate(token)
            except Unauthorized as exc:
                body = {"code": exc.code, "message": exc.message, "retryable": False}
                return JSONResponse({"error": body}, status_code=401, headers={"www-authenticate": "Bearer"})
        clip = self.runtime.store.get(request.path_params["clip_id"])
        if clip is None:
            body = {
                "code": "uri_forbidden",
                "message": "that audio is unknown or has expired; call speak again",
            }
            return JSONResponse({"error": body}, status_code=403)
        return Response(clip.data, media_type=clip.mime_type, headers={"cache-control": "no-store"})
