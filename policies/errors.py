"""Policy decisions that refuse a call. Each carries a stable `code` and a message for the caller::

PolicyError (code, retryable; a ContractError)
├── Unauthorized    unauthorized   no or unknown credentials
├── Forbidden       forbidden      the principal may not use this tool or voice
├── PolicyDenied    policy_denied  a content rule refused it (`rule` names the rule)
├── OverLimit       text_too_long / audio_too_long  over the principal's per-call limit
├── RateLimited     rate_limited   over the principal's rate or quota (`retry_after_ms`)
├── AuditUnavailable backend_unavailable  the audit file cannot be written (refusing is the policy)
└── StateUnavailable backend_unavailable  the shared quota store (Redis) cannot be reached
"""

from __future__ import annotations

from speech_errors import ContractError


class PolicyError(ContractError):
    """Base of every refusal by policy."""

    code = "forbidden"


class Unauthorized(PolicyError):
    """No credentials, or credentials that match no principal."""

    code = "unauthorized"


class Forbidden(PolicyError):
    """The principal is known but may not use this tool or voice."""

    code = "forbidden"


class PolicyDenied(PolicyError):
    """A content rule refused the call; `rule` is the rule's id."""

    code = "policy_denied"

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message, rule=rule)


class TextOverLimit(PolicyError):
    """The text is over the principal's per-call character limit."""

    code = "text_too_long"

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, limit=limit)


class RateLimited(PolicyError):
    """The principal is over its rate or quota; retry after `retry_after_ms`."""

    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after_ms: int, rule: str) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms, rule=rule)


class AuditUnavailable(PolicyError):
    """The audit trail cannot be written and the policy refuses calls that would go unrecorded."""

    code = "backend_unavailable"
    retryable = True

    def __init__(self, message: str, retry_after_ms: int = 5000) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)


class StateUnavailable(PolicyError):
    """The shared state (the quota counters' store) cannot be reached: nothing is admitted unchecked."""

    code = "backend_unavailable"
    retryable = True

    def __init__(self, message: str, retry_after_ms: int = 1000) -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)
