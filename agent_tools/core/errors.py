"""The contract's error table, the errors the service adds, and the one mapping of any error to the
contract's error object.

Every error raised on purpose is a `speech_errors.ContractError` (the backend's `SpeechError` and
the policy's `PolicyError` both are); the service adds::

    SpeechError
    ├── Busy             busy            queue full or shutting down (retryable, retry_after_ms)
    ├── DeadlineExceeded timeout         the call ran past its deadline and its work was stopped
    ├── UriForbidden     uri_forbidden   a scheme, root or file that may not be read
    ├── NotFound         not_found       nothing there yet (the eval report before `make eval`)
    └── ...              the backend's codes

Everything else is `internal`: logged with its request id, reported with a generic message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from speech_backend import SpeechError
from speech_errors import ContractError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorKind:
    """How one code is reported on every transport."""

    http_status: int
    retryable: bool
    grpc_status: str  # the name of the gRPC status code (`grpc.StatusCode`), for the gRPC surface

    @property
    def close_code(self) -> int:
        """The WebSocket close code: 4000 + the HTTP status (4401 unauthorized, 4504 timeout, ...)."""
        return 4000 + self.http_status


# The one table of the contract's codes (CONTRACT.md section 1), plus the HTTP-only ones.
ERROR_CODES: dict[str, ErrorKind] = {
    "invalid_argument": ErrorKind(400, False, "INVALID_ARGUMENT"),
    "payload_too_large": ErrorKind(413, False, "INVALID_ARGUMENT"),
    "text_too_long": ErrorKind(400, False, "INVALID_ARGUMENT"),
    "audio_too_long": ErrorKind(400, False, "INVALID_ARGUMENT"),
    "unsupported_media": ErrorKind(415, False, "INVALID_ARGUMENT"),
    "decode_failed": ErrorKind(400, False, "INVALID_ARGUMENT"),
    "uri_forbidden": ErrorKind(403, False, "PERMISSION_DENIED"),
    "voice_not_found": ErrorKind(404, False, "NOT_FOUND"),
    "unauthorized": ErrorKind(401, False, "UNAUTHENTICATED"),
    "forbidden": ErrorKind(403, False, "PERMISSION_DENIED"),
    "policy_denied": ErrorKind(403, False, "PERMISSION_DENIED"),
    "rate_limited": ErrorKind(429, True, "RESOURCE_EXHAUSTED"),
    "busy": ErrorKind(503, True, "RESOURCE_EXHAUSTED"),
    "timeout": ErrorKind(504, True, "DEADLINE_EXCEEDED"),
    "backend_unavailable": ErrorKind(503, True, "UNAVAILABLE"),
    "cancelled": ErrorKind(499, False, "CANCELLED"),
    "not_found": ErrorKind(404, False, "NOT_FOUND"),
    "method_not_allowed": ErrorKind(405, False, "UNIMPLEMENTED"),
    "internal": ErrorKind(500, True, "INTERNAL"),
}
INTERNAL = ERROR_CODES["internal"]
INTERNAL_MESSAGE = "an internal error occurred; retry, and report the request id if it persists"


def error_kind(code: str) -> ErrorKind:
    """How `code` is reported; a code the table does not know is reported as `internal` is."""
    return ERROR_CODES.get(code, INTERNAL)


class Busy(SpeechError):
    """Every engine slot is taken and the queue is full, or the server is shutting down."""

    code = "busy"
    retryable = True

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)


class DeadlineExceeded(SpeechError):
    """The call ran past its deadline; its engine work was stopped."""

    code = "timeout"
    retryable = True
    http_status: ClassVar[int] = 504  # a request body that stopped arriving says 408


class UriForbidden(SpeechError):
    """The URI names a scheme, root or file this server will not read."""

    code = "uri_forbidden"


class NotFound(SpeechError):
    """What was asked for does not exist (yet)."""

    code = "not_found"


def http_status(code: str, exc: BaseException | None = None) -> int:
    """The HTTP status of an error code, unless the error names a more precise one itself (a request
    body that stopped arriving is 408, not 504)."""
    failure = unwrap(exc) if exc is not None else None
    if isinstance(failure, DeadlineExceeded):
        return failure.http_status
    return error_kind(code).http_status


def error_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The contract's error object for `exc`; unexpected exceptions become `internal` and are logged.

    A failure from inside a task group arrives wrapped in an exception group: the typed error in it
    is the outcome.
    """
    exc = unwrap(exc)
    if isinstance(exc, ContractError):
        return {
            "code": exc.code,
            "message": exc.message,
            "retryable": exc.retryable,
            "request_id": request_id,
            **exc.details(),
        }
    logger.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
    return {"code": "internal", "message": INTERNAL_MESSAGE, "retryable": True, "request_id": request_id}


def unwrap(exc: BaseException) -> BaseException:
    """The error an exception group stands for: its first typed error, else its first leaf."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = _leaves(exc)
    typed = [e for e in leaves if isinstance(e, ContractError)]
    return (typed or leaves or [exc])[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for inner in group.exceptions:
        out.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return out
