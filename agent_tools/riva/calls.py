"""What every gRPC method shares: the caller from the `authorization` metadata (the same principal
and policy as HTTP), the client's deadline as the call's, an audit line per call, and every error
as one gRPC status from core's error table, with the contract's error object in the status
details (a `google.rpc.ErrorInfo` whose reason is the code, and a `RetryInfo` when retryable)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.trace import SpanKind

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import DeadlineExceeded, error_body, error_kind, unwrap
from agent_tools.core.runtime import Runtime, new_request_id
from policies import Principal

logger = logging.getLogger(__name__)
T = TypeVar("T")
DOMAIN = "speech-tools"


def bearer(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The token of an `authorization: Bearer …` metadata entry, if any."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip() or None
    return None


def status_of(body: dict[str, Any]) -> grpc.Status:
    """The gRPC status of a contract error object: its code's status, its message, and the object
    in the details."""
    kind = error_kind(body["code"])
    info = error_details_pb2.ErrorInfo(
        reason=body["code"], domain=DOMAIN, metadata={k: str(v) for k, v in body.items() if v is not None}
    )
    details = [_packed(info)]
    if body.get("retry_after_ms"):
        seconds, millis = divmod(int(body["retry_after_ms"]), 1000)
        delay = duration_pb2.Duration(seconds=seconds, nanos=millis * 1_000_000)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    code = grpc.StatusCode[kind.grpc_status]
    return rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=body["message"], details=details)
    )


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


@dataclass
class Call:
    """One call being served: who makes it, its request id, and what its audit line reports."""

    principal: Principal
    request_id: str
    chars: int | None = None
    audio_seconds: float | None = None


class Calls:
    """The gRPC methods' shared steps over one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        """The principal of the call's token (the local one when the policy has no tokens).

        Raises:
            Unauthorized: tokens are required and the call has none, or an unknown one.
        """
        if not self.runtime.auth_required:
            return self.runtime.policy.local()
        return self.runtime.policy.authenticate(bearer(context))

    @asynccontextmanager
    async def serving(self, context: grpc.aio.ServicerContext[Any, Any], tool: str) -> AsyncIterator[Call]:
        """The block is one call of `tool`: admitted (the caller known, the server not draining),
        within the client's deadline, audited; any failure ends the call with its status."""
        request_id, started = new_request_id(), time.perf_counter()
        call: Call | None = None
        error: dict[str, Any] | None = None
        remaining = context.time_remaining()
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        carrier.pop("authorization", None)
        attributes = {"rpc.system": "grpc", "speech.tool": tool, "speech.request_id": request_id}
        try:
            with self.runtime.tracing.incoming(f"gRPC {tool}", carrier, SpanKind.SERVER, attributes) as span:
                call = Call(self.caller(context), request_id)
                span.set_attribute("enduser.id", call.principal.id)
                self.runtime.scheduler.check_open()
                self.runtime.engines.require()
                with anyio.fail_after(remaining if remaining is not None else None):
                    yield call
        except TimeoutError:
            error = error_body(
                DeadlineExceeded("the call's deadline passed; its work was stopped"), request_id
            )
        except (grpc.aio.AbortError, anyio.get_cancelled_exc_class()):
            raise  # (an abort already sent; a client that cancelled)
        except Exception as exc:
            error = error_body(unwrap(exc), request_id)
        finally:
            self._count(tool, error, time.perf_counter() - started)
            audit_call(
                self.runtime.policy,
                request_id=request_id,
                principal=call.principal if call is not None else None,
                tool=tool,
                error=error,
                seconds=time.perf_counter() - started,
                chars=call.chars if call is not None else None,
                audio_seconds=call.audio_seconds if call is not None else None,
                transport="grpc",
            )
        if error is not None:
            await context.abort_with_status(status_of(error))

    def _count(self, tool: str, error: dict[str, Any] | None, seconds: float) -> None:
        metrics = self.runtime.metrics
        metrics.latency.labels(tool).observe(seconds)
        metrics.calls.labels(tool, "ok" if error is None else "error").inc()
        if error is not None:
            metrics.errors.labels(tool, error["code"]).inc()

    async def unary(
        self, context: grpc.aio.ServicerContext[Any, Any], tool: str, work: Callable[[Call], Awaitable[T]]
    ) -> T:
        """A unary method: `work`'s answer, or the call ended with its error's status."""
        async with self.serving(context, tool) as call:
            return await work(call)
        raise AssertionError("unreachable: a failed call is aborted")  # pragma: no cover
