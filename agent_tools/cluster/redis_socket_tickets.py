"""Socket tickets in Redis, so that a ticket one front-end issued opens a socket on any other (a
load balancer need not be sticky). Each ticket is a key with the ticket's time to live, taken and
deleted in one step (`GETDEL`), so it is redeemed once across the deployment. Each principal's
outstanding tickets are listed in the order they were issued, so that issuing past its bound drops
its own oldest, in the same atomic step (a script). Imported only when Redis is configured."""

from __future__ import annotations

import contextlib

import redis

from agent_tools.core.socket_tickets import MAX_PER_PRINCIPAL, SPENT, new_ticket
from policies import Unauthorized
from speech_backend import BackendUnavailable

UNREACHABLE = "the shared ticket store (Redis) cannot be reached; retry shortly"
# KEYS: the ticket, the principal's list; ARGV: principal id, time to live (ms), per-principal bound.
ISSUE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('RPUSH', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
  redis.call('DEL', redis.call('LPOP', KEYS[2]))
end
"""


class RedisSocketTickets:
    """Tickets under `<prefix>:ticket:<value>`, holding the principal id; each principal's under
    `<prefix>:tickets-of:<id>`."""

    def __init__(
        self, client: redis.Redis, ttl_seconds: float, prefix: str, per_principal: int = MAX_PER_PRINCIPAL
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.per_principal = per_principal
        self._redis = client
        self._prefix = f"{prefix}:ticket:"
        self._owners = f"{prefix}:tickets-of:"
        self._issue = client.register_script(ISSUE)

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`, valid `ttl_seconds` on every front-end.

        Raises:
            BackendUnavailable: Redis cannot be reached.
        """
        ticket = new_ticket()
        ttl_ms = max(1, int(self.ttl_seconds * 1000))
        keys = [self._prefix + ticket, self._owners + principal_id]
        try:
            self._issue(keys=keys, args=[principal_id, ttl_ms, self.per_principal])
        except redis.RedisError as exc:
            raise BackendUnavailable(UNREACHABLE) from exc
        return ticket

    def redeem(self, ticket: str) -> str:
        """The principal id `ticket` was issued to; the ticket is spent everywhere.

        Raises:
            Unauthorized: unknown, spent or expired.
            BackendUnavailable: Redis cannot be reached.
        """
        try:
            found = self._redis.getdel(self._prefix + ticket)
        except redis.RedisError as exc:
            raise BackendUnavailable(UNREACHABLE) from exc
        if found is None:
            raise Unauthorized(SPENT)
        principal_id = found.decode() if isinstance(found, bytes) else str(found)
        with contextlib.suppress(redis.RedisError):  # else the entry expires with the set
            self._redis.lrem(self._owners + principal_id, 1, self._prefix + ticket)
        return principal_id
