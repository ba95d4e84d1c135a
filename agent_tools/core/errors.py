"""Errors the service adds to the backend's, and the one mapping of any error to the contract.

The tree, beside `speech_backend.errors.SpeechError`'s::

    SpeechError
    ├── Busy            busy            queue full or shutting down (retryable, retry_after_ms)
    ├── DeadlineExceeded timeout        the call ran past its deadline and its work was stopped
    ├── UriForbidden    uri_forbidden   a scheme, root or file that may not be read
    └── ...             the backend's codes

Everything else is `internal`: logged with its request id, reported with a generic message.
"""

from __future__ import annotations

import logging
from typing import Any

from policies import PolicyError
from speech_backend import SpeechError

logger = logging.getLogger(__name__)

HTTP_STATUS: dict[str, int] = {
    "invalid_argument": 400,
    "payload_too_large": 413,
    "text_too_long": 400,
    "audio_too_long": 400,
    "unsupported_media": 415,
    "decode_failed": 400,
    "uri_forbidden": 403,
    "voice_not_found": 404,
    "unauthorized": 401,
    "forbidden": 403,
    "policy_denied": 403,
    "rate_limited": 429,
    "busy": 503,
    "timeout": 504,
    "backend_unavailable": 503,
    "cancelled": 499,
    "internal": 500,
}


def http_status(code: str, exc: BaseException | None = None) -> int:
    """The HTTP status of an error code (500 for a code the table does not know), unless the error
    names a more precise one itself (a request body that stopped arriving is 408, not 504)."""
    precise = getattr(unwrap(exc), "http_status", None) if exc is not None else None
    return int(precise) if precise is not None else HTTP_STATUS.get(code, 500)


INTERNAL_MESSAGE = "an internal error occurred; retry, and report the request id if it persists"


class Busy(SpeechError):
    """Every engine slot is taken and the queue is full, or the server is shutting down."""

    code = "busy"
    retryable = True

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class DeadlineExceeded(SpeechError):
    """The call ran past its deadline; its engine work was stopped."""

    code = "timeout"
    retryable = True


class UriForbidden(SpeechError):
    """The URI names a scheme, root or file this server will not read."""

    code = "uri_forbidden"


def error_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The contract's error object for `exc`; unexpected exceptions become `internal` and are logged.

    A failure from inside a task group arrives wrapped in an exception group: the typed error in it
    is the outcome.
    """
    exc = unwrap(exc)
    if isinstance(exc, SpeechError | PolicyError):
        body: dict[str, Any] = {
            "code": exc.code,
            "message": exc.message,
            "retryable": exc.retryable,
            "request_id": request_id,
        }
        retry_after = getattr(exc, "retry_after_ms", None)
        if retry_after is not None:
            body["retry_after_ms"] = int(retry_after)
        for extra in ("limit", "rule"):
            value = getattr(exc, extra, None)
            if value is not None:
                body[extra] = value
        return body
    logger.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
    return {"code": "internal", "message": INTERNAL_MESSAGE, "retryable": True, "request_id": request_id}


def unwrap(exc: BaseException) -> BaseException:
    """The error an exception group stands for: its first typed error, else its first leaf."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = _leaves(exc)
    typed = [e for e in leaves if isinstance(e, SpeechError | PolicyError)]
    return (typed or leaves or [exc])[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for inner in group.exceptions:
        out.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return out
