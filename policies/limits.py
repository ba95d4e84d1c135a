"""Rates and quotas per principal, counted in fixed windows on an injected clock."""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from policies.config import Principal
from policies.errors import RateLimited, StateUnavailable
from policies.quota_store import Charge, QuotaStore

logger = logging.getLogger(__name__)
MINUTE, HOUR, DAY = 60, 3600, 86400
MAX_HELD = 100_000  # usage records held while the store is unreachable; the oldest go beyond it


class Usage(NamedTuple):
    """Use already made (audio heard or spoken), to be added to one window of one counter."""

    principal: str
    counter: str
    window_start: int
    amount: float


class Limits:
    """Checks and records calls, characters and audio seconds against a principal's allowances."""

    def __init__(self, store: QuotaStore, clock: Callable[[], float], max_held: int = MAX_HELD) -> None:
        self.store = store
        self.clock = clock
        # Use made while the store could not be reached is held, in order, and added once it answers:
        # the work is done and the caller served, so the use is counted late rather than never.
        self._held: deque[Usage] = deque(maxlen=max_held)
        self._held_lock = threading.Lock()  # one thread writes held use back at a time
        self.lost = 0  # held use dropped for want of room (a long outage under load)
        self._holding = False  # the store failed a write: said once, and again when it recovers

    @property
    def held(self) -> int:
        """Usage records waiting for the store to answer again."""
        return len(self._held)

    def admit(self, principal: Principal, chars: int = 0, calls: int = 1) -> None:
        """Count `calls` calls (one, or none for more text of a call already counted) and `chars`
        characters, if the rate and quotas allow it.

        Raises:
            RateLimited: over the rate or a quota, with the time until the window turns.
        """
        self.write_held()  # use counted late still counts before this call is admitted
        now = self.clock()
        checks: list[tuple[str, int, float | None, float]] = [
            ("calls_per_minute", MINUTE, principal.rate_per_minute, float(calls)),
            ("chars_per_hour", HOUR, principal.quota.chars_per_hour, float(chars)),
            ("chars_per_day", DAY, principal.quota.chars_per_day, float(chars)),
            ("audio_seconds_per_hour", HOUR, principal.quota.audio_seconds_per_hour, 0.0),
            ("audio_seconds_per_day", DAY, principal.quota.audio_seconds_per_day, 0.0),
        ]
        if not calls:
            checks = checks[1:]  # more of a call already counted: the call rate does not apply
        charges = [
            Charge(counter, int(now // window * window), window, limit, amount)
            for counter, window, limit, amount in checks
            if limit is not None
        ]
        over = self.store.charge(principal.id, charges) if charges else None
        if over is not None:
            retry_ms = max(1, math.ceil((over.window_start + over.window_seconds - now) * 1000))
            raise RateLimited(
                f"{principal.id} is over its {over.counter.replace('_', ' ')} limit of {over.limit:g}; "
                f"retry after {retry_ms} ms",
                retry_after_ms=retry_ms,
                rule=over.counter,
            )

    def record_audio(self, principal: Principal, seconds: float) -> None:
        """Count audio seconds heard or spoken for the principal's quotas. Never raises for an
        unreachable store: the use is held and added once the store answers."""
        now = self.clock()
        for counter, window, limit in (
            ("audio_seconds_per_hour", HOUR, principal.quota.audio_seconds_per_hour),
            ("audio_seconds_per_day", DAY, principal.quota.audio_seconds_per_day),
        ):
            if limit is not None:
                if len(self._held) == self._held.maxlen:
                    self.lost += 1
                self._held.append(Usage(principal.id, counter, int(now // window * window), seconds))
        self.write_held()

    def write_held(self) -> None:
        """Add held use to the store, oldest first, until it is all added or the store fails (the
        rest stays held). A thread finding another at it leaves the work to that one."""
        if not self._held or not self._held_lock.acquire(blocking=False):
            return
        try:
            while self._held:
                usage = self._held[0]
                try:
                    self.store.add(usage.principal, usage.counter, usage.window_start, usage.amount)
                except StateUnavailable:
                    if not self._holding:  # once per outage
                        logger.warning("quota store unreachable; usage is held until it answers")
                        self._holding = True
                    return
                self._held.popleft()
            if self._holding:
                logger.warning("quota store answers again; held usage added", extra={"lost": self.lost})
                self._holding = False
        finally:
            self._held_lock.release()
