"""Pure decisions over plain values: who is calling, what they may call, how much, what content.

No I/O except the audit sink and the quota store it is handed.
"""

from policies.audit import AuditFileError, AuditRecord, AuditSink, MemoryAuditSink, RotatingFileAuditSink
from policies.auth import authenticate, token_hash
from policies.config import PolicyConfig, PolicyFileError, Principal, Quota, load_policy
from policies.errors import (
    AuditUnavailable,
    Forbidden,
    PolicyDenied,
    PolicyError,
    RateLimited,
    StateUnavailable,
    TextOverLimit,
    Unauthorized,
)
from policies.policy import Policy
from policies.quota_store import MemoryQuotaStore, QuotaStore, SqliteQuotaStore

__all__ = [
    "AuditFileError",
    "AuditRecord",
    "AuditSink",
    "AuditUnavailable",
    "Forbidden",
    "MemoryAuditSink",
    "MemoryQuotaStore",
    "Policy",
    "PolicyConfig",
    "PolicyDenied",
    "PolicyError",
    "PolicyFileError",
    "Principal",
    "Quota",
    "QuotaStore",
    "RateLimited",
    "RotatingFileAuditSink",
    "SqliteQuotaStore",
    "StateUnavailable",
    "TextOverLimit",
    "Unauthorized",
    "authenticate",
    "load_policy",
    "token_hash",
]
