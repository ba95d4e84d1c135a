"""The boundary around every tool call: request ids, the caller's principal, unknown-argument
refusal, the one mapping of failures to the contract's error result, metrics and the audit line."""

import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import CallToolResult, TextContent
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import error_body
from agent_tools.core.requests import invalid_request
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.tools.client_results import ERROR_META, result_error
from policies import Principal, Unauthorized
from speech_backend import InvalidArgument
from speech_errors import ContractError

logger = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def typed_errors(fn: F) -> F:
    """Return every failure of a tool as the contract's error result instead of raising it."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:  # the boundary: every failure becomes exactly one typed result
            return error_result(exc, request_id_var.get())

    return wrapper  # type: ignore[return-value]


def structured(result: BaseModel, *content: Any) -> CallToolResult:
    """A successful tool result: any leading content blocks, then the JSON text, plus structured content."""
    return CallToolResult(
        content=[*content, TextContent(text=result.model_dump_json())],
        structured_content=result.model_dump(mode="json"),
    )


def error_result(exc: BaseException, request_id: str) -> CallToolResult:
    """The tool result for a failure: `[code] message` text for the model, and the error object in
    `_meta`. No `structuredContent`: SDKs (the TypeScript one and every host on it) check structured
    content against the tool's output schema even on errors, and an error is not a result."""
    body = error_body(exc, request_id)
    retry = f"retry after {body['retry_after_ms']} ms; " if "retry_after_ms" in body else ""
    return CallToolResult(
        content=[TextContent(text=f"[{body['code']}] {body['message']} ({retry}request {request_id})")],
        meta={ERROR_META: body},
        is_error=True,
    )


def mcp_principal(runtime: Runtime) -> Principal:
    """Who is making an MCP request: the principal of the HTTP bearer token, else the local one.

    Raises:
        Unauthorized: the token's principal is no longer in the policy.
    """
    access = get_access_token()
    if access is None:
        return runtime.policy.local()
    found = runtime.policy.config.principal(access.client_id or "")
    if found is None:
        raise Unauthorized("the bearer token's principal is no longer in the policy")
    return found


class ToolCallBoundary:
    """Middleware around every tools/call: gives the call a request id, refuses unknown arguments,
    turns the SDK's own failures (schema validation, unknown tool) into the contract's errors, and
    counts the call."""

    def __init__(self, runtime: Runtime, tools: dict[str, FuncMetadata]) -> None:
        self.runtime = runtime
        self.tools = tools
        self.allowed = {name: frozenset(meta.arg_model.model_fields) for name, meta in tools.items()}

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method != "tools/call" or not isinstance(ctx.params, dict):
            return await call_next(ctx)
        tool = str(ctx.params.get("name", ""))
        label = tool if tool in self.allowed else "unknown"
        request_id = new_request_id()
        started = time.perf_counter()
        token, principal_token = request_id_var.set(request_id), principal_var.set(None)
        meta = ctx.params.get("_meta")
        carrier = meta if isinstance(meta, dict) else None
        attributes = {"speech.request_id": request_id, "speech.tool": label, "rpc.system": "mcp"}
        try:
            with (
                self.runtime.scheduler.track(),  # a drain waits for the whole call
                self.runtime.tracing.incoming(f"tools/call {label}", carrier, SpanKind.SERVER, attributes),
            ):
                result = await self._call(ctx, call_next, tool, label, request_id, started)
        finally:
            request_id_var.reset(token)
            principal_var.reset(principal_token)
        self._count(label, result, time.perf_counter() - started)
        return result

    async def _call(
        self, ctx: Any, call_next: Any, tool: str, label: str, request_id: str, started: float
    ) -> CallToolResult:
        arguments = ctx.params.get("arguments")
        try:
            who = mcp_principal(self.runtime)
            principal_var.set(who)
            trace.get_current_span().set_attribute("enduser.id", who.id)
            self._check_arguments(tool, arguments)
            answer = await call_next(ctx)
            # the chain hands back the serialized result
            result = answer if isinstance(answer, CallToolResult) else CallToolResult.model_validate(answer)
            failure = _sdk_failure(result)
            if failure is not None:
                result = error_result(failure, request_id)
        except ContractError as exc:
            result, arguments = error_result(exc, request_id), None
        self._audit(label, request_id, result, time.perf_counter() - started, arguments)
        return result

    def _audit(self, tool: str, request_id: str, result: Any, seconds: float, arguments: object) -> None:
        """One audit line: who, which tool, the decision and sizes; never the text or audio."""
        error = result_error(result) if isinstance(result, CallToolResult) else None
        structured = result.structured_content if isinstance(result, CallToolResult) else None
        chars = (
            len(arguments["text"])
            if isinstance(arguments, dict) and isinstance(arguments.get("text"), str)
            else None
        )
        audio = structured.get("duration_seconds") if structured and error is None else None
        audit_call(
            self.runtime.policy,
            request_id=request_id,
            principal=principal_var.get(),
            tool=tool,
            error=error,
            seconds=seconds,
            chars=chars,
            audio_seconds=audio,
        )

    def _count(self, tool: str, result: Any, seconds: float) -> None:
        metrics = self.runtime.metrics
        metrics.latency.labels(tool).observe(seconds)
        error = result_error(result) if isinstance(result, CallToolResult) else None
        if error is None:
            metrics.calls.labels(tool, "ok").inc()
            return
        metrics.calls.labels(tool, "error").inc()
        metrics.errors.labels(tool, error["code"]).inc()
        logger.info(
            "tool error", extra={"tool": tool, "code": error["code"], "request_id": error["request_id"]}
        )

    def _check_arguments(self, tool: str, arguments: object) -> None:
        if tool not in self.allowed:
            raise InvalidArgument(
                f"there is no tool {tool!r}; the tools are {', '.join(sorted(self.allowed))}"
            )
        if arguments is None:
            return
        if not isinstance(arguments, dict):
            raise InvalidArgument("arguments must be a JSON object")
        unknown = sorted(set(arguments) - self.allowed[tool])
        if unknown:
            raise InvalidArgument(
                f"{tool} has no argument {', '.join(map(repr, unknown))}; "
                f"its arguments are {', '.join(sorted(self.allowed[tool]))}"
            )
        try:  # as the SDK will, so that a refusal is known by its type, not by the SDK's wording
            self.tools[tool].validate_arguments(arguments)
        except ValidationError as exc:
            raise invalid_arguments(exc) from None


def _sdk_failure(result: Any) -> Exception | None:
    """The error an is_error result of the SDK's own making stands for; None for success or our errors.

    Arguments are validated before the SDK sees them, so what is left is a failure with no typed
    error: `internal`.
    """
    if not isinstance(result, CallToolResult) or not result.is_error:
        return None
    if result.meta and ERROR_META in result.meta:
        return None
    return RuntimeError("tool failed without a typed error")


def invalid_arguments(exc: ValidationError) -> InvalidArgument:
    """The rules a pydantic validation error names, worded as on every surface (never the text)."""
    return invalid_request(exc)
