"""The policy: every decision about a call, made before any engine runs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from policies.audit import AuditRecord, AuditSink
from policies.auth import authenticate
from policies.config import PolicyConfig, Principal
from policies.content import ContentPolicy
from policies.errors import AuditUnavailable, Forbidden, TextOverLimit, Unauthorized
from policies.limits import Limits
from policies.quota_store import MemoryQuotaStore, QuotaStore
from policies.redaction import redact

_SENSITIVE_WORD = re.compile(r"[\d@]")


class Policy:
    """Who may call, how much and what content, over one policy file (reloadable)."""

    def __init__(
        self,
        config: PolicyConfig | None = None,
        store: QuotaStore | None = None,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._config = config or PolicyConfig()
        self._content = ContentPolicy(self._config.content)
        self.limits = Limits(store or MemoryQuotaStore(), clock)
        self.audit_sink = audit

    @property
    def config(self) -> PolicyConfig:
        """The policy in force."""
        return self._config

    def reload(self, config: PolicyConfig) -> None:
        """Put a new policy in force; calls already admitted are unaffected."""
        content = ContentPolicy(config.content)
        with self._lock:
            self._config, self._content = config, content

    def authenticate(self, token: str | None) -> Principal:
        """The principal holding a bearer token.

        Raises:
            Unauthorized: no token, or an unknown one.
        """
        return authenticate(self._config, token)

    def local(self) -> Principal:
        """The principal of stdio and in-process callers.

        Raises:
            Unauthorized: the policy names a local principal it does not define.
        """
        principal = self._config.principal(self._config.local_principal)
        if principal is None:
            raise Unauthorized(
                f"the policy defines no principal {self._config.local_principal!r} for local calls"
            )
        return principal

    def resolve(self, principal: Principal) -> Principal:
        """The current definition of `principal` (after a reload), or Unauthorized if it was removed."""
        current = self._config.principal(principal.id)
        if current is None:
            raise Unauthorized(f"principal {principal.id!r} is no longer in the policy")
        return current

    @property
    def audit_writable(self) -> bool:
        """False while the audit sink is failing to write (a full disk, say)."""
        return bool(getattr(self.audit_sink, "writable", True))

    def check_audit(self) -> None:
        """Raises AuditUnavailable while the audit trail cannot be written and the policy says to refuse."""
        if not self.audit_writable and self._config.audit.on_failure == "refuse":
            raise AuditUnavailable(
                "the server cannot write its audit trail, and its policy refuses calls that would go "
                "unrecorded; retry later"
            )

    def check_tool(self, principal: Principal, tool: str) -> None:
        """Raises Forbidden when the principal may not call `tool`, AuditUnavailable when calls are
        refused for want of an audit trail."""
        self.check_audit()
        if not principal.may_use(tool):
            raise Forbidden(f"{principal.id} may not use the {tool} tool")

    def check_speak(
        self, principal: Principal, text: str, voice: str, *, spoken_chars: int = 0, spoken_text: str = ""
    ) -> None:
        """Everything `speak` needs before synthesis: tool, voice, length, content, rate and quota.

        For text arriving in pieces, `spoken_chars` is what the utterance already had: the piece's
        characters are counted, the length cap applies to the whole, and no further call is counted
        against the rate. The content rules read `spoken_text` (the utterance's earlier pieces)
        before the piece, so that a pattern split across pieces is still caught.

        Raises:
            Forbidden, TextOverLimit, PolicyDenied, RateLimited.
        """
        self.check_tool(principal, "speak")
        if not principal.may_speak_with(voice):
            raise Forbidden(
                f"{principal.id} may not use the voice {voice!r}; call list_voices for those allowed"
            )
        total = spoken_chars + len(text)
        if principal.max_text_chars is not None and total > principal.max_text_chars:
            raise TextOverLimit(
                f"text is {total} characters, over {principal.id}'s limit of {principal.max_text_chars}; "
                "split it into several calls",
                limit=principal.max_text_chars,
            )
        self._content.check(f"{spoken_text} {text}" if spoken_text else text)
        self.limits.admit(principal, chars=len(text), calls=0 if spoken_chars else 1)

    def check_transcribe(self, principal: Principal) -> float | None:
        """Tool, rate and quota before any decoding; returns the principal's audio cap in seconds.

        Raises:
            Forbidden, RateLimited.
        """
        self.check_tool(principal, "transcribe")
        self.limits.admit(principal)
        return principal.max_audio_seconds

    def check_socket_ticket(self, principal: Principal) -> None:
        """A socket ticket counts as a call against the rate (a ticket opens a socket)."""
        self.check_audit()
        self.limits.admit(principal)

    def check_list_voices(self, principal: Principal) -> None:
        """Tool and rate for `list_voices`."""
        self.check_tool(principal, "list_voices")
        self.limits.admit(principal)

    def may_read_audio(self, reader: Principal, owner_id: str) -> bool:
        """True when `reader` may read an `audio://` clip made by principal `owner_id`: its own, or
        one whose owner (as the policy now defines it) shares audio with the reader."""
        if reader.id == owner_id:
            return True
        owner = self._config.principal(owner_id)
        return owner is not None and ("*" in owner.shares_audio_with or reader.id in owner.shares_audio_with)

    def allowed_voices(self, principal: Principal, voices: list[str]) -> list[str]:
        """The voice ids the principal may use, in order."""
        return [v for v in voices if principal.may_speak_with(v)]

    def record_audio(self, principal: Principal, seconds: float) -> None:
        """Count audio heard or spoken against the principal's quotas."""
        self.limits.record_audio(principal, seconds)

    def redact_text(self, principal: Principal, text: str) -> str:
        """The transcript text as this principal may receive it."""
        return redact(text) if principal.redact_pii else text

    def redact_word(self, principal: Principal, word: str) -> str:
        """A single recognised word as this principal may receive it (digits and @ hidden when redacting)."""
        if principal.redact_pii and _SENSITIVE_WORD.search(word):
            return "[redacted]"
        return word

    def close(self) -> None:
        """Close the audit sink and the quota store, when they hold files."""
        for resource in (self.audit_sink, self.limits.store):
            close = getattr(resource, "close", None)
            if close is not None:
                close()

    def audit(self, record: AuditRecord) -> None:
        """Write one decision to the audit sink, if any."""
        if self.audit_sink is not None:
            self.audit_sink.write(record)
