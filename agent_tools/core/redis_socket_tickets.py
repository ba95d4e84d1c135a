"""Socket tickets in Redis, so that a ticket one front-end issued opens a socket on any other (a
load balancer need not be sticky). Each ticket is a key with the ticket's time to live, taken and
deleted in one step (`GETDEL`), so it is redeemed once across the deployment. Imported only when
Redis is configured."""

from __future__ import annotations

import redis

from agent_tools.core.socket_tickets import SPENT, new_ticket
from policies import Unauthorized
from speech_backend import BackendUnavailable

UNREACHABLE = "the shared ticket store (Redis) cannot be reached; retry shortly"


class RedisSocketTickets:
    """Tickets under `<prefix>:ticket:<value>`, holding the principal id."""

    def __init__(self, client: redis.Redis, ttl_seconds: float, prefix: str) -> None:
        self.ttl_seconds = ttl_seconds
        self._redis = client
        self._prefix = f"{prefix}:ticket:"

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`, valid `ttl_seconds` on every front-end.

        Raises:
            BackendUnavailable: Redis cannot be reached.
        """
        ticket = new_ticket()
        try:
            self._redis.set(self._prefix + ticket, principal_id, px=max(1, int(self.ttl_seconds * 1000)))
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
        return found.decode() if isinstance(found, bytes) else str(found)
