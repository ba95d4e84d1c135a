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
    """The contract's error object for `exc`; unexpected exceptions become `internal` and are logged."""
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
