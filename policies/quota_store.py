"""Counters for rates and quotas, behind one small interface: in-process, a SQLite file that keeps
its state across restarts, or Redis shared by every front-end (`policies.redis_quota_store`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Charge:
    """Use to count in one window of one counter, if it stays within `limit`: with an amount, the
    window's total after it may not pass the limit; with none, the total may not have reached it."""

    counter: str
    window_start: int
    window_seconds: int
    limit: float
    amount: float

    def over(self, used: float) -> bool:
        """Whether this charge would go over its limit, given what the window has used."""
        return used + self.amount > self.limit if self.amount else used >= self.limit


class QuotaStore(Protocol):
    """Fixed-window counters keyed by (principal, counter, window start)."""

    def used(self, principal: str, counter: str, window_start: int) -> float:
        """What has been used in that window."""
        ...

    def add(self, principal: str, counter: str, window_start: int, amount: float) -> None:
        """Record use in that window (older windows of the counter may be dropped)."""
        ...

    def charge(self, principal: str, charges: Sequence[Charge]) -> Charge | None:
        """Atomically: the first charge that would go over its limit (nothing is counted), or None
        once every charge is counted — two front-ends can never both take the last unit."""
        ...


def charge_locally(store: QuotaStore, principal: str, charges: Sequence[Charge]) -> Charge | None:
    """`charge` for a store whose caller holds its lock."""
    for item in charges:
        if item.over(store.used(principal, item.counter, item.window_start)):
            return item
    for item in charges:
        if item.amount:
            store.add(principal, item.counter, item.window_start, item.amount)
    return None


class MemoryQuotaStore:
    """Counters in this process only."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.RLock()

    def used(self, principal: str, counter: str, window_start: int) -> float:
        """What has been used in that window."""
        with self._lock:
            start, amount = self._counts.get((principal, counter), (window_start, 0.0))
            return amount if start == window_start else 0.0

    def add(self, principal: str, counter: str, window_start: int, amount: float) -> None:
        """Record use; a new window replaces the old one."""
        with self._lock:
            start, total = self._counts.get((principal, counter), (window_start, 0.0))
            total = total if start == window_start else 0.0
            self._counts[(principal, counter)] = (window_start, total + amount)

    def charge(self, principal: str, charges: Sequence[Charge]) -> Charge | None:
        """Check and count under one lock."""
        with self._lock:
            return charge_locally(self, principal, charges)


class SqliteQuotaStore:
    """Counters in a SQLite file, so a restart does not reset them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS usage (principal TEXT, counter TEXT, window_start INTEGER, "
            "amount REAL, PRIMARY KEY (principal, counter))"
        )
        self._lock = threading.RLock()

    def used(self, principal: str, counter: str, window_start: int) -> float:
        """What has been used in that window."""
        with self._lock:
            row = self._db.execute(
                "SELECT window_start, amount FROM usage WHERE principal = ? AND counter = ?",
                (principal, counter),
            ).fetchone()
        return float(row[1]) if row is not None and row[0] == window_start else 0.0

    def add(self, principal: str, counter: str, window_start: int, amount: float) -> None:
        """Record use; a new window replaces the old one."""
        with self._lock:
            self._db.execute(
                "INSERT INTO usage VALUES (?, ?, ?, ?) ON CONFLICT (principal, counter) DO UPDATE SET "
                "amount = CASE WHEN window_start = excluded.window_start THEN amount + excluded.amount "
                "ELSE excluded.amount END, window_start = excluded.window_start",
                (principal, counter, window_start, amount),
            )

    def charge(self, principal: str, charges: Sequence[Charge]) -> Charge | None:
        """Check and count in one write transaction (atomic across processes sharing the file)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                over = charge_locally(self, principal, charges)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return over

    def close(self) -> None:
        """Close the file."""
        self._db.close()
