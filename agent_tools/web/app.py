"""The ASGI application: MCP over streamable HTTP (`/mcp`) and legacy SSE (`/sse`), plus
`/healthz` (live), `/readyz` (models loaded and answering) and `/metrics` (Prometheus)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.tools.server import build_server
from agent_tools.web.guard import BodyTimeouts, PathTable, RequestGuard
from agent_tools.web.openai_routes import OpenAIRoutes
from agent_tools.web.openai_speech import OpenAISpeechRoute
from agent_tools.web.page_routes import PageRoutes
from agent_tools.web.probes import Probes
from agent_tools.web.realtime_socket import RealtimeSocket
from agent_tools.web.route_boundary import ApiRoute, RouteBoundary
from agent_tools.web.sockets import SocketGate, SocketRoute
from agent_tools.web.speak_socket import SpeakSocket
from agent_tools.web.speech_stream import SpeechStreamRoute
from agent_tools.web.transcribe_socket import TranscribeSocket

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


LOOPBACK_ORIGINS = r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?"


def cors(runtime: Runtime) -> Middleware:
    """Cross-origin access for pages on loopback and the configured origins, the same ones the guard
    lets through; a preflight from any other origin is refused."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(runtime.settings.server.allowed_origins),
        allow_origin_regex=LOOPBACK_ORIGINS,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=[
            "authorization",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
        ],
        expose_headers=["mcp-session-id", "retry-after", "www-authenticate", "x-synthetic-speech"],
        max_age=600,
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


def api_routes(runtime: Runtime) -> list[ApiRoute]:
    """Every API route beside MCP, with the tool its audit lines name."""
    return [
        *OpenAISpeechRoute(runtime).api(),
        *OpenAIRoutes(runtime).api(),
        *SpeechStreamRoute(runtime).api(),
        *PageRoutes(runtime).api(),
    ]


def socket_routes(runtime: Runtime) -> list[SocketRoute]:
    """Every WebSocket route, with the tool its audit lines name."""
    return [
        SpeakSocket(runtime).socket(),
        TranscribeSocket(runtime).socket(),
        RealtimeSocket(runtime).socket(),
    ]


def audit_labels(api: list[ApiRoute], sockets: list[SocketRoute]) -> PathTable[str]:
    """The tool name an audit line gives a request the guard refuses (from each route's record)."""
    mcp = [("/mcp", "mcp"), ("/sse", "mcp"), ("/messages/", "mcp")]
    routes = [*((r.path, r.tool) for r in api), *((s.path, s.tool) for s in sockets)]
    return PathTable([*routes, *mcp, ("/audio/", "read_audio")], default="http")


def build_app(runtime: Runtime, server: MCPServer | None = None) -> Starlette:
    """The app over `runtime`; engines not loaded yet load in the background at start-up."""
    server = server or build_server(runtime)
    security = transport_security(runtime)
    limit = body_limit(runtime)
    streamable = server.streamable_http_app(
        max_request_body_size=limit,
        transport_security=security,
        stateless_http=runtime.settings.server.stateless_mcp,
    )
    sse = server.sse_app(max_request_body_size=limit, transport_security=security)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg, server.session_manager.run():
            if runtime.engines.loaded is None:
                tg.start_soon(runtime.load_in_thread)
            try:
                yield
            finally:
                runtime.scheduler.shutdown()
                tg.cancel_scope.cancel()
        runtime.policy.close()
        runtime.tracing.shutdown()

    api, sockets = api_routes(runtime), socket_routes(runtime)
    routes = [
        *Probes(runtime).routes(),
        *PageRoutes(runtime).routes(),
        *RouteBoundary(runtime).routes(api),
        *SocketGate(runtime).routes(sockets),
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
        tools=audit_labels(api, sockets),
    )
    # CORS answers preflights (which carry no token) before the guard; then the guard; then the MCP
    # app's own middleware (the SDK's view of the bearer token).
    return Starlette(
        routes=routes,
        middleware=[cors(runtime), guard, *streamable.user_middleware],
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
