"""The ASGI application: MCP over streamable HTTP (`/mcp`) and legacy SSE (`/sse`), plus
`/healthz` (live), `/readyz` (models loaded and answering) and `/metrics` (Prometheus)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent_tools.core.audio_store import read_clip
from agent_tools.core.errors import UriForbidden, error_body, http_status
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.tools.server import build_server
from agent_tools.web.guard import BodyTimeouts, PathTable, RequestGuard
from agent_tools.web.http_routes import HttpRoutes
from agent_tools.web.sockets import SocketGate
from agent_tools.web.speak_socket import SpeakSocket
from agent_tools.web.transcribe_socket import TranscribeSocket
from policies import PolicyError

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ENVELOPE_BYTES = 1024 * 1024
JSON_BODY_BYTES = 1024 * 1024  # the JSON routes' bodies: text of at most 100,000 characters, escaped


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


def body_limits(runtime: Runtime) -> PathTable[int]:
    """Each route's body limit: MCP messages carry base64 audio, uploads raw audio, the rest JSON."""
    mcp = body_limit(runtime)
    upload = runtime.settings.engines.audio.max_bytes + ENVELOPE_BYTES
    prefixes = (
        ("/mcp", mcp),
        ("/messages/", mcp),
        ("/v1/audio/transcriptions", upload),
        ("/v1/", JSON_BODY_BYTES),
    )
    return PathTable(prefixes, default=64 * 1024)


def audit_labels() -> PathTable[str]:
    """The tool name an audit line gives a request the guard refuses."""
    mcp = [("/mcp", "mcp"), ("/sse", "mcp"), ("/messages/", "mcp")]
    return PathTable([*HttpRoutes.tools(), *mcp, ("/audio/", "read_audio")], default="http")


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

    gate = SocketGate(runtime)
    routes = [
        *Probes(runtime).routes(),
        *HttpRoutes(runtime).routes(),
        *SpeakSocket(runtime, gate).routes(),
        *TranscribeSocket(runtime, gate).routes(),
        *sse.routes,
        *streamable.routes,
    ]
    timing = runtime.settings.server
    guard = Middleware(
        RequestGuard,
        runtime=runtime,
        security=security,
        limits=body_limits(runtime),
        timeouts=BodyTimeouts(timing.body_read_timeout_seconds, timing.body_timeout_seconds),
        tools=audit_labels(),
    )
    # The guard first; then the MCP app's own middleware (the SDK's view of the bearer token).
    return Starlette(
        routes=routes,
        middleware=[guard, *streamable.user_middleware],
        lifespan=lifespan,
        exception_handlers={404: no_route, 405: no_route},
    )


async def no_route(request: Request, exc: Exception) -> Response:
    """An unknown path or method, as the contract's error object."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    code, message = (
        ("method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
        if status == 405
        else ("not_found", f"there is no route {request.url.path}; see the README for the routes")
    )
    body = {"code": code, "message": message, "retryable": False, "request_id": new_request_id()}
    return JSONResponse({"error": body}, status_code=status)


class Probes:
    """The plain HTTP routes beside MCP: liveness, readiness, metrics and audio downloads."""

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
        """Ready: the models are loaded."""
        runtime = self.runtime
        if runtime.service is None:
            return JSONResponse(
                {"status": "not_ready", "reason": runtime.load_error or "loading"}, status_code=503
            )
        if not runtime.policy.audit_writable:
            return JSONResponse({"status": "not_ready", "reason": "audit_unwritable"}, status_code=503)
        return JSONResponse({"status": "ready", "recognizer": runtime.service.recognizer.model_id})

    async def metrics(self, request: Request) -> Response:
        """Prometheus text, with queue gauges sampled now."""
        runtime = self.runtime
        if runtime.service is not None:
            for admission in (runtime.service.synthesis, runtime.service.recognition):
                runtime.metrics.queue_depth.labels(admission.name).set(admission.waiting)
                runtime.metrics.in_use.labels(admission.name).set(admission.in_use)
        runtime.metrics.sample_audit(runtime.policy)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def audio(self, request: Request) -> Response:
        """The raw bytes behind an `audio://` handle, while it lives."""
        request_id = new_request_id()
        try:
            clip = read_clip(self.runtime.store, self.runtime.policy, request.path_params["clip_id"],
                             request.state.principal, request_id=request_id, transport="http")  # fmt: skip
        except (UriForbidden, PolicyError) as exc:
            body = error_body(exc, request_id)
            return JSONResponse({"error": body}, status_code=http_status(body["code"], exc))
        return Response(clip.data, media_type=clip.mime_type, headers={"cache-control": "no-store"})
