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
logger = logging.getLogger(__name__)


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


class AuditFileError(ValueError):
    """The audit file cannot be opened for writing (at start-up)."""


class _StrictRotatingHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler whose write errors reach the caller instead of stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called from inside logging's `except`: re-raise what failed


class RotatingFileAuditSink:
    """JSON lines in a file that rotates at `max_bytes`, keeping `backups` old files.

    A failed write (a full disk, a removed folder) is not raised: the sink turns unwritable, logs it
    once, counts each record lost, and tries again with the next record; the first record that is
    written again makes it writable (logged once too). Callers decide what an unwritable audit
    trail means for the calls they serve (`writable`).
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = _StrictRotatingHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as exc:
            raise AuditFileError(
                f"the audit file {path} cannot be opened for writing ({exc.strerror}); fix audit.path in the "
                "policy file or the folder's permissions"
            ) from exc
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self.path = path
        self.writable = True
        self.lost = 0  # records that could not be written

    def write(self, record: AuditRecord) -> None:
        """Append the record as one line."""
        line = logging.LogRecord("audit", logging.INFO, "", 0, record.to_json(), None, None)
        try:
            self._handler.handle(line)
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed under us
            self.lost += 1
            if self.writable:
                self.writable = False
                logger.error(
                    "audit file unwritable; audit records are being lost",
                    extra={
                        "path": str(self.path),
                        "error": getattr(exc, "strerror", None) or type(exc).__name__,
                    },
                )
            return
        if not self.writable:
            self.writable = True
            logger.warning("audit file writable again", extra={"path": str(self.path), "lost": self.lost})

    def close(self) -> None:
        """Close the file."""
        self._handler.close()
