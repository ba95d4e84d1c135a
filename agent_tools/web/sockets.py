"""What every WebSocket route shares: the bearer token, JSON events, bounded
waits on a silent or slow client, and closing with the contract's error object.

A refusal sends `{"type": "error", ...the contract's error object}` and closes with code
4000 + the error's HTTP status (4401 unauthorized, 4400 invalid_argument, 4504 timeout, ...) and
the error code as the close reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import anyio
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import DeadlineExceeded, error_body, error_kind, unwrap
from agent_tools.core.requests import invalid_request
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.core.socket_tickets import SUBPROTOCOL
from policies import Principal
from speech_backend import PayloadTooLarge

logger = logging.getLogger(__name__)

MAX_TEXT_FRAME = 64 * 1024


class ClientGone(Exception):
    """The client closed the connection."""


class ClientTooSlow(DeadlineExceeded):
    """The client stopped reading what the server sends."""


ErrorEvent = Callable[[dict[str, Any]], dict[str, Any]]


def error_event(body: dict[str, Any]) -> dict[str, Any]:
    """Our sockets' error event: the error object with `type: error`."""
    return {"type": "error", **body}


class SocketSession:
    """One accepted WebSocket with the caller resolved, sending and receiving within bounds."""

    def __init__(
        self,
        websocket: WebSocket,
        timeout_seconds: float,
        *,
        max_text_frame: int = MAX_TEXT_FRAME,
        error_event: ErrorEvent = error_event,
    ) -> None:
        self.websocket = websocket
        self.timeout_seconds = timeout_seconds
        self.max_text_frame = max_text_frame
        self.error_event = error_event
        self.request_id = new_request_id()
        self.chars = 0  # text spoken or audio heard over the connection, for its audit line
        self.audio_seconds = 0.0

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one JSON event; a client that does not read for `timeout_seconds` is too slow.

        Raises:
            ClientTooSlow: the client stopped reading.
            ClientGone: the connection is closed.
        """
        try:
            with anyio.fail_after(self.timeout_seconds):
                await self.websocket.send_text(json.dumps(event, separators=(",", ":")))
        except TimeoutError as exc:
            raise ClientTooSlow(
                f"the client read nothing for {self.timeout_seconds:g} s; read events as they arrive"
            ) from exc
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise ClientGone from exc

    async def receive(self, idle_message: str, idle: Callable[[], bool] = lambda: True) -> str | bytes:
        """The next frame, text or binary.

        Raises:
            DeadlineExceeded: nothing arrived for `timeout_seconds` while `idle()` held (the client
                had nothing to wait for; `idle_message` says what was expected).
            PayloadTooLarge: a text frame over `max_text_frame` bytes (64 KiB unless set).
            ClientGone: the client closed.
        """
        while True:
            with anyio.move_on_after(self.timeout_seconds) as waited:
                message = await self.websocket.receive()
            if not waited.cancelled_caught:
                break
            if idle():
                raise DeadlineExceeded(f"nothing arrived for {self.timeout_seconds:g} s; {idle_message}")
        if message["type"] == "websocket.disconnect":
            raise ClientGone
        if message.get("bytes") is not None:
            return cast(bytes, message["bytes"])
        text = cast(str, message.get("text") or "")
        if len(text) > self.max_text_frame:
            raise PayloadTooLarge(f"a text frame is over {self.max_text_frame} bytes; send smaller messages")
        return text

    async def fail(self, exc: BaseException) -> dict[str, Any]:
        """Send the error object for `exc`, close with its code, and return the object."""
        body = error_body(typed(exc), self.request_id)
        with contextlib.suppress(ClientGone, DeadlineExceeded):
            await self.send(self.error_event(body))
        await self.close(error_kind(body["code"]).close_code, body["code"])
        return body

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close, unless the client already did."""
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(code, reason)


def typed(exc: BaseException) -> BaseException:
    """A message that failed validation as the `invalid_argument` it is, naming the field."""
    if not isinstance(exc, ValidationError):
        return exc
    return invalid_request(exc)


def guarded_caller(websocket: WebSocket) -> Principal:
    """The caller the request guard found for this socket.

    Raises:
        Unauthorized: the guard refused the bearer token (reported now that the socket is open).
    """
    state = websocket.scope.get("state", {})
    refusal = state.get("refusal")
    if refusal is not None:
        raise refusal
    found = state.get("principal")
    assert isinstance(found, Principal), "the request guard runs before every socket"
    return found


SessionHandler = Callable[[SocketSession, Principal | None], Awaitable[None]]


@dataclass(frozen=True)
class SocketRoute:
    """One WebSocket route, registered once: its path, the tool its audit lines name, the session it
    serves, and how it talks (its error event, its largest text frame). The gate and the guard's
    audit labels both come from this record."""

    path: str
    tool: str
    session: SessionHandler
    audit_each_call: bool = False  # the session audits each call it serves (a refusal is audited)
    max_text_frame: int = MAX_TEXT_FRAME
    error_event: ErrorEvent = error_event


class SocketGate:
    """Admits a WebSocket the request guard let through (Host and Origin): the bearer token as for
    every route, refused the way a socket can say it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self, sockets: list[SocketRoute]) -> list[BaseRoute]:
        """Starlette routes for `sockets`, each served through the gate."""
        return [WebSocketRoute(s.path, functools.partial(self.serve, route=s)) for s in sockets]

    async def serve(self, websocket: WebSocket, route: SocketRoute) -> None:
        """Admit the client and run the route's session on it. Any failure is sent as the error
        object and closes the socket with its code; a session that returns closes it normally. An
        audit line per connection (who, how it ended, the audio it carried), or only for a refused
        or failed connection when the session audits each call it serves (`audit_each_call`)."""
        tool, handler, audit_each_call = route.tool, route.session, route.audit_each_call
        offered = websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        timeout = self.runtime.settings.service.socket_timeout_seconds
        session = SocketSession(
            websocket, timeout, max_text_frame=route.max_text_frame, error_event=route.error_event
        )
        started = time.perf_counter()
        principal: Principal | None = None
        error: dict[str, Any] | None = None
        headers = dict(websocket.headers)
        attributes = {
            "url.path": websocket.url.path,
            "speech.tool": tool,
            "speech.request_id": session.request_id,
        }
        try:
            with self.runtime.tracing.incoming(
                f"WS {websocket.url.path}", headers, SpanKind.SERVER, attributes
            ) as span:
                principal = guarded_caller(websocket)
                span.set_attribute("enduser.id", principal.id)
                self.runtime.engines.require()
                self.runtime.scheduler.check_open()  # draining: connect to another server
                await handler(session, principal)
                await session.close()
        except Exception as exc:  # refused or failed: the error object says why
            failure = unwrap(exc)  # a task group's failure arrives wrapped
            if not isinstance(failure, ClientGone):
                error = await session.fail(failure)
        finally:
            if error is not None or not audit_each_call:
                audit_call(
                    self.runtime.policy,
                    request_id=session.request_id,
                    principal=principal,
                    tool=tool,
                    error=error,
                    seconds=time.perf_counter() - started,
                    chars=session.chars or None,
                    audio_seconds=session.audio_seconds or None,
                    transport="ws",
                )
