"""The base of every error of the contract (CONTRACT.md), shared by `speech_backend` and `policies`.

Both packages raise errors with a stable `code`, a message written for the caller (what went wrong
and what to do instead), whether a retry can help, and — where it applies — the limit that was
passed, the policy rule that refused the call, and when to retry. They never import each other, so
the one base lives here, below both.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ContractError(Exception):
    """An error raised on purpose: one of the contract's codes, with what the caller needs to act."""

    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        limit: float | None = None,
        rule: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit
        self.rule = rule
        self.retry_after_ms = retry_after_ms

    def details(self) -> dict[str, Any]:
        """The optional fields of the error object this error fills: `limit`, `rule`, `retry_after_ms`."""
        fields = {"retry_after_ms": self.retry_after_ms, "limit": self.limit, "rule": self.rule}
        return {key: value for key, value in fields.items() if value is not None}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


__all__ = ["ContractError"]
