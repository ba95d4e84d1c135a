"""The one guard in front of every route: Host and Origin for HTTP and WebSockets alike; for HTTP
the bearer token and the request body bounded as it arrives (bytes counted, every read timed).
Refusals are the contract's error object with its status, whatever route was asked for, MCP's
included.

A WebSocket's token (or, from a browser, its socket ticket) is checked by `SocketGate` after the
handshake, so that the refusal can be said the way a socket can (an error event and a close code).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import anyio
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from opentelemetry.trace import SpanKind
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import DeadlineExceeded, error_body, http_status
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.core.socket_tickets import offered_ticket, redeem_ticket
from policies import Principal, Unauthorized
from speech_backend import InvalidArgument, PayloadTooLarge, SpeechError
from speech_errors import ContractError

T = TypeVar("T")
# Paths anyone on an allowed Host may ask for, tokens or not: probes, metrics, OAuth metadata, the
# playground page's static files (it asks for a token itself before it calls anything).
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/.well-known/", "/page/")
PUBLIC_EXACT = ("/",)
# Probes and the metrics scrape answer any Host: kubelets, load balancers and Prometheus address a
# front-end by its pod or instance IP, which no list of names holds. They are read-only and hold no
# caller's data; a request from a browser page (one carrying an Origin) is still refused.
ANY_HOST = ("/healthz", "/readyz", "/metrics")


def public(path: str) -> bool:
    """Whether `path` is served without a token."""
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PATHS)


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def caller(runtime: Runtime, headers: Headers) -> Principal:
    """The principal a request or socket is made as: the bearer token's when the policy has tokens,
    else the local one.

    Raises:
        Unauthorized: tokens are required and the request has none, or an unknown one.
    """
    if not runtime.auth_required:
        return runtime.policy.local()
    return runtime.policy.authenticate(bearer_token(headers))


async def socket_caller(runtime: Runtime, headers: Headers, subprotocols: Sequence[str]) -> Principal:
    """The principal a WebSocket is opened as: as `caller`, or, for a browser (which cannot set
    headers on a socket), by a ticket offered as the subprotocol `ticket.<value>`.

    Raises:
        Unauthorized: as `caller`; or the ticket is unknown, spent or expired, or its principal has
            left the policy since.
    """
    ticket = offered_ticket(list(subprotocols))
    if not runtime.auth_required or ticket is None or bearer_token(headers) is not None:
        return caller(runtime, headers)
    return await redeem_ticket(runtime.tickets, runtime.policy, ticket)


@dataclass(frozen=True)
class PathTable(Generic[T]):
    """A value per path prefix (the first match wins), and one for any other path."""

    prefixes: Sequence[tuple[str, T]]
    default: T

    def of(self, path: str) -> T:
        """The value for `path`."""
        return next((value for prefix, value in self.prefixes if path.startswith(prefix)), self.default)


@dataclass(frozen=True)
class BodyTimeouts:
    """How long one read of the body may wait, and how long the whole body may take."""

    read_seconds: float
    total_seconds: float


class RequestTimeout(DeadlineExceeded):
    """The client sent its request body too slowly."""

    http_status = 408


class BoundedBody:
    """The `receive` of one request, counting body bytes and timing each read until the body ends;
    past either bound it raises the typed error (and keeps raising it)."""

    def __init__(self, receive: Receive, limit: int, timeouts: BodyTimeouts) -> None:
        self._receive = receive
        self.limit = limit
        self.timeouts = timeouts
        self.received = 0
        self.complete = False
        self.failure: SpeechError | None = None
        self._deadline = time.monotonic() + timeouts.total_seconds

    async def receive(self) -> Message:
        """The next message; body reads are bounded until the last body chunk has arrived."""
        if self.failure is not None:
            raise self.failure
        if self.complete:  # what is left to wait for is the client leaving, however long that takes
            return await self._receive()
        wait = min(self.timeouts.read_seconds, self._deadline - time.monotonic())
        with anyio.move_on_after(max(0.0, wait)) as waited:
            message = await self._receive()
        if waited.cancelled_caught:
            self.failure = RequestTimeout(
                f"the request body did not arrive in time (at most {self.timeouts.read_seconds:g} s between "
                f"reads, {self.timeouts.total_seconds:g} s in all); send it without pausing"
            )
            raise self.failure
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit:
                self.failure = PayloadTooLarge(
                    f"the request body is over the limit of {self.limit} bytes for this route; send less"
                )
                raise self.failure
        else:
            self.complete = True
        return message


class RequestGuard:
    """ASGI middleware: every HTTP request passes Host/Origin, then the bearer token (except on
    `PUBLIC_PATHS`), then reads its body within `limits` and `timeouts`. A refusal of a caller
    gets an audit line under the route's tool name (`tools`)."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        security: TransportSecuritySettings,
        limits: PathTable[int],
        timeouts: BodyTimeouts,
        tools: PathTable[str],
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.security = TransportSecurityMiddleware(security)
        self.limits = limits
        self.timeouts = timeouts
        self.tools = tools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handshake = cast(Request, HTTPConnection(scope))  # the check reads only the headers
            if await self.security.validate_request(handshake) is not None:
                # before the handshake completes: the client sees HTTP 403
                await send({"type": "websocket.close", "code": 4403, "reason": "forbidden"})
                return
            state = scope.setdefault("state", {})
            try:
                subprotocols = scope.get("subprotocols", [])
                state["principal"] = await socket_caller(self.runtime, Headers(scope=scope), subprotocols)
            except ContractError as exc:  # the socket reports it once open, as a close code a client reads
                state["refusal"] = exc
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = await self._refused(scope)
        if refused is not None:  # 421 for a foreign Host, 403 for a foreign Origin
            message = "the Host or Origin header is not one this server answers; use its address"
            await _reply(send, refused, {"code": "forbidden", "message": message, "retryable": False})
            return
        headers = Headers(scope=scope)
        request_id = new_request_id()
        try:
            if not public(scope["path"]):
                scope.setdefault("state", {})["principal"] = self._caller(scope["path"], headers, request_id)
            limit = self.limits.of(scope["path"])
            declared = _content_length(headers)
            if declared is not None and declared > limit:
                raise PayloadTooLarge(
                    f"the request body is {declared} bytes, over the limit of {limit}; send less"
                )
        except ContractError as exc:
            await _reply_error(send, exc, request_id)
            return
        body = BoundedBody(receive, limit, self.timeouts)
        started = False
        path = scope["path"]
        attributes = {"http.request.method": scope["method"], "url.path": path}

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        span_name = f"{scope['method']} {path}"
        # probes, metrics and the page's files are polled or static: a trace of each is noise
        span: AbstractContextManager[object] = (
            nullcontext()
            if public(path)
            else self.runtime.tracing.incoming(span_name, headers, SpanKind.SERVER, attributes)
        )
        with span:
            try:
                await self.app(scope, body.receive, tracked)
            except Exception:
                if body.failure is None or started:
                    raise
                await _reply_error(send, body.failure, request_id)

    async def _refused(self, scope: Scope) -> int | None:
        """The status refusing a request's Host or Origin, or None: a probe (`ANY_HOST`, read with
        GET or HEAD) passes with any Host and no Origin."""
        if scope["path"] in ANY_HOST and scope["method"] in ("GET", "HEAD"):
            return 403 if "origin" in Headers(scope=scope) else None
        refused = await self.security.validate_request(Request(scope))
        return None if refused is None else refused.status_code

    def _caller(self, path: str, headers: Headers, request_id: str) -> Principal:
        """The caller; a refusal is audited under the id its reply carries."""
        try:
            return caller(self.runtime, headers)
        except Unauthorized as exc:
            audit_call(
                self.runtime.policy,
                request_id=request_id,
                principal=None,
                tool=self.tools.of(path),
                error=error_body(exc, request_id),
                seconds=0.0,
                transport="http",
            )
            raise


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument("the Content-Length header is not a number") from None


async def _reply_error(send: Send, exc: ContractError, request_id: str) -> None:
    body = error_body(exc, request_id)
    await _reply(send, http_status(body["code"], exc), body)


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    payload = json.dumps({"error": {**body, "type": body["code"]}}).encode()
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
