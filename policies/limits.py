"""Rates and quotas per principal, counted in fixed windows on an injected clock."""

from __future__ import annotations

import math
from collections.abc import Callable

from policies.config import Principal
from policies.errors import RateLimited
from policies.quota_store import Charge, QuotaStore

MINUTE, HOUR, DAY = 60, 3600, 86400


class Limits:
    """Checks and records calls, characters and audio seconds against a principal's allowances."""

    def __init__(self, store: QuotaStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def admit(self, principal: Principal, chars: int = 0, calls: int = 1) -> None:
        """Count `calls` calls (one, or none for more text of a call already counted) and `chars`
        characters, if the rate and quotas allow it.

        Raises:
            RateLimited: over the rate or a quota, with the time until the window turns.
        """
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
        """Count audio seconds heard or spoken for the principal's quotas."""
        now = self.clock()
        for counter, window, limit in (
            ("audio_seconds_per_hour", HOUR, principal.quota.audio_seconds_per_hour),
            ("audio_seconds_per_day", DAY, principal.quota.audio_seconds_per_day),
        ):
            if limit is not None:
                self.store.add(principal.id, counter, int(now // window * window), seconds)
