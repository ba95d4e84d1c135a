"""The audit trail: one JSON line per decision. Never text bodies, transcripts, audio or tokens."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

Decision = Literal["allow", "deny", "error"]


@dataclass(frozen=True)
class AuditRecord:
    """One decision about one call: who, what, the outcome and its sizes; no content."""

    request_id: str
    principal: str
    tool: str
    decision: Decision
    code: str | None = None
    rule: str | None = None
    chars: int | None = None
    audio_seconds: float | None = None
    latency_ms: float | None = None
    transport: str | None = None
    time: str = ""

    def to_json(self) -> str:
        """The record as one JSON line (time filled in when empty)."""
        body = asdict(self)
        if not body["time"]:
            body["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return json.dumps({k: v for k, v in body.items() if v is not None}, separators=(",", ":"))


class AuditSink(Protocol):
    """Where audit records go."""

    def write(self, record: AuditRecord) -> None:
        """Record one decision."""
        ...


class MemoryAuditSink:
    """Keeps records in a list (for tests and for callers that forward them elsewhere)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def write(self, record: AuditRecord) -> None:
        """Keep the record."""
        self.records.append(record)


class RotatingFileAuditSink:
    """JSON lines in a file that rotates at `max_bytes`, keeping `backups` old files."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, record: AuditRecord) -> None:
        """Append the record as one line."""
        self._handler.handle(logging.LogRecord("audit", logging.INFO, "", 0, record.to_json(), None, None))

    def close(self) -> None:
        """Close the file."""
        self._handler.close()
