"""The boundary around every HTTP API route: a request id, the caller the guard found, calls refused
while they could not be recorded, one typed error object with its HTTP status for any failure, an
audit line per call, and what a call holds (an utterance's slot) given back however its response
ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from opentelemetry import trace
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import error_body, http_status
from agent_tools.core.json_input import parse_json
from agent_tools.core.requests import invalid_request
from agent_tools.core.runtime import Runtime, new_request_id
from policies import Principal
from speech_backend import Cancelled

Handler = Callable[[Request], Awaitable[Response]]
Closing = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class ApiRoute:
    """One API route: its path, method, handler, and the tool its audit lines name."""

    path: str
    method: str
    handler: Handler
    tool: str
    audit_success: bool = True  # False for reads polled every few seconds (a refusal is audited)


class RouteBoundary:
    """Wraps API handlers so that every failure is the contract's error object and every call audited."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self, api: list[ApiRoute]) -> list[BaseRoute]:
        """Starlette routes for `api`, each inside the boundary."""
        return [Route(r.path, self.wrap(r.handler, r.tool, r.audit_success), methods=[r.method]) for r in api]

    def wrap(self, handler: Handler, tool: str, audit_success: bool = True) -> Handler:
        """`handler` inside the boundary (a stream's audit line says it started, not how it ended)."""

        async def guarded(request: Request) -> Response:
            request_id = new_request_id()
            request.state.request_id = request_id  # a stream's error event carries it too
            span = trace.get_current_span()  # the request guard's
            span.set_attribute("speech.request_id", request_id)
            span.set_attribute("speech.tool", tool)
            who = getattr(request.state, "principal", None)
            if isinstance(who, Principal):
                span.set_attribute("enduser.id", who.id)
            started = time.perf_counter()
            try:
                if audit_success:  # a call that would go unrecorded is refused when the policy says so
                    self.runtime.policy.check_audit()
                response = await handler(request)
            except ValidationError as exc:
                error: Exception = invalid_request(exc)
            except Exception as exc:  # the boundary: one typed error for anything
                error = exc
            else:
                if isinstance(response, StreamingResponse | EventSourceResponse):
                    # a stream's audit line is written when it ends, and says how it ended
                    stream = response.body_iterator
                    response.body_iterator = self._audited(stream, request, request_id, tool, started)
                elif audit_success:
                    self._audit(request, request_id, tool, None, started)
                closing = _closing(request)
                return _ClosingResponse(response, closing) if closing else response
            for close in _closing(request):  # refused after taking something: give it back now
                await close()
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

    async def _audited(
        self, stream: AsyncIterable[Any], request: Request, request_id: str, tool: str, started: float
    ) -> AsyncIterator[Any]:
        """`stream`, with the call's audit line written when it ends (a failure midway is the route's
        `stream_error`; a listener that left ends it too)."""
        try:
            async for item in stream:
                yield item
        finally:
            failure = getattr(request.state, "stream_error", None)
            error = None if failure is None else error_body(failure, request_id)
            self._audit(request, request_id, tool, error, started)

    def _audit(
        self, request: Request, request_id: str, tool: str, error: dict[str, Any] | None, started: float
    ) -> None:
        state = request.state
        audit_call(
            self.runtime.policy,
            request_id=request_id,
            principal=getattr(state, "principal", None),
            tool=tool,
            error=error,
            seconds=time.perf_counter() - started,
            chars=getattr(state, "chars", None),
            audio_seconds=getattr(state, "audio_seconds", None),
            transport="http",
        )


class _ClosingResponse(Response):
    """A response, then the request's closing callbacks, however it ends (a client gone before its
    first byte included: a stream's body may then never start)."""

    def __init__(self, inner: Response, closing: list[Closing]) -> None:
        self.inner = inner
        self.closing = closing
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                for close in self.closing:
                    await close()


def _closing(request: Request) -> list[Closing]:
    found: list[Closing] = getattr(request.state, "closing", [])
    return found


def on_response_end(request: Request, close: Closing) -> None:
    """Run `close` once the request's response has ended, or at once if the route then fails."""
    if not hasattr(request.state, "closing"):
        request.state.closing = []
    request.state.closing.append(close)


def principal(request: Request) -> Principal:
    """The caller, as the guard found it (and kept on the request for its audit line)."""
    found = request.state.principal
    assert isinstance(found, Principal), "the request guard runs before every API route"
    return found


async def json_body(request: Request) -> Any:
    """The JSON body (its size bounded by the guard as it arrives).

    Raises:
        InvalidArgument: not JSON, or nested too deeply to parse.
    """
    return parse_json(await request.body())


async def while_connected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """`work`, cancelled if the client hangs up meanwhile (its engine work stops at the next
    segment or sentence and frees its slot). Call it only once the body has been read: the watch
    waits for the connection's next message, which is then its end.

    Raises:
        Cancelled: the client hung up.
    """
    outcome: list[T] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            outcome.append(await work())
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        while (await request.receive())["type"] != "http.disconnect":  # the body is read: wait for the end
            pass
        tg.cancel_scope.cancel()
    if not outcome:
        raise Cancelled("the client hung up before the result was ready; its work was stopped")
    return outcome[0]
