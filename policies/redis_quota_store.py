"""Quota and rate counters in Redis, shared by every front-end: each charge is checked and counted
in one Lua script, so two front-ends can never both take a principal's last unit. Window counters
expire with their window. Imported only when Redis is configured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from policies.errors import StateUnavailable
from policies.quota_store import Charge

# KEYS: one counter per charge. ARGV: per charge, its limit, amount and time-to-live in seconds.
# Returns 0 once everything is counted, else the 1-based index of the first charge over its limit.
_CHARGE = """
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local amount = tonumber(ARGV[3 * i - 1])
  local used = tonumber(redis.call('GET', key) or '0')
  if (amount > 0 and used + amount > limit) or (amount == 0 and used >= limit) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[3 * i - 1])
  if amount > 0 then
    redis.call('INCRBYFLOAT', key, ARGV[3 * i - 1])
    redis.call('EXPIRE', key, ARGV[3 * i])
  end
end
return 0
"""
UNREACHABLE = "the shared quota store (Redis) cannot be reached; retry shortly"


class RedisQuotaStore:
    """Fixed-window counters under `<prefix>:quota:{<principal>}:<counter>:<window start>` (the
    braces keep one principal's counters in one Redis Cluster slot)."""

    def __init__(self, client: redis.Redis, prefix: str = "speech-tools") -> None:
        self._redis = client
        self._prefix = prefix
        self._charge: Any = client.register_script(_CHARGE)

    def _key(self, principal: str, counter: str, window_start: int) -> str:
        return f"{self._prefix}:quota:{{{principal}}}:{counter}:{window_start}"

    def used(self, principal: str, counter: str, window_start: int) -> float:
        """What has been used in that window.

        Raises:
            StateUnavailable: Redis cannot be reached.
        """
        try:
            value = self._redis.get(self._key(principal, counter, window_start))
        except redis.RedisError as exc:
            raise StateUnavailable(UNREACHABLE) from exc
        return float(value) if value is not None else 0.0

    def add(self, principal: str, counter: str, window_start: int, amount: float) -> None:
        """Record use in that window.

        Raises:
            StateUnavailable: Redis cannot be reached.
        """
        self.charge(principal, [Charge(counter, window_start, 0, float("inf"), amount)])  # no limit

    def charge(self, principal: str, charges: Sequence[Charge]) -> Charge | None:
        """Check and count atomically in Redis.

        Raises:
            StateUnavailable: Redis cannot be reached (nothing is admitted unchecked).
        """
        if not charges:
            return None
        keys = [self._key(principal, c.counter, c.window_start) for c in charges]
        args: list[str] = []
        for c in charges:
            ttl = (c.window_seconds or 86_400) + 60  # a window's counter outlives its window
            args += [repr(min(c.limit, 1e300)), repr(c.amount), str(ttl)]
        try:
            over = int(self._charge(keys=keys, args=args))
        except redis.RedisError as exc:
            raise StateUnavailable(UNREACHABLE) from exc
        return charges[over - 1] if over else None

    def close(self) -> None:
        """Close the connections."""
        self._redis.close()
