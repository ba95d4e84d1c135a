"""One way to write an audit line for any surface: MCP tool calls, HTTP routes, WebSocket turns."""

from __future__ import annotations

from typing import Any

from policies import AuditRecord, Policy, Principal
from policies.audit import Decision

POLICY_CODES = frozenset({"unauthorized", "forbidden", "policy_denied", "rate_limited", "text_too_long"})


def audit_call(
    policy: Policy,
    *,
    request_id: str,
    principal: Principal | None,
    tool: str,
    error: dict[str, Any] | None,
    seconds: float,
    chars: int | None = None,
    audio_seconds: float | None = None,
    transport: str | None = None,
) -> None:
    """Record who called what and how it ended (allow, deny by policy, or error), with sizes only.
    A refusal is a denial when its code is a policy's or a policy rule is named."""
    denied = error is not None and (error["code"] in POLICY_CODES or error.get("rule") is not None)
    decision: Decision = "allow" if error is None else "deny" if denied else "error"
    policy.audit(
        AuditRecord(
            request_id=request_id,
            principal=principal.id if principal else "-",
            tool=tool,
            decision=decision,
            code=error["code"] if error else None,
            rule=error.get("rule") if error else None,
            chars=chars,
            audio_seconds=None if audio_seconds is None else round(audio_seconds, 3),
            latency_ms=round(seconds * 1000, 1),
            transport=transport,
        )
    )
