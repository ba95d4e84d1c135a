"""Short-lived, single-use tickets that let a browser open a WebSocket as a principal: a browser
cannot set an `Authorization` header on a socket, so the page asks for a ticket with its bearer
token (`POST /v1/socket-tickets`) and offers it as a WebSocket subprotocol — never in a URL."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from policies import Unauthorized

TICKET_PREFIX = "ticket."  # the subprotocol that carries a ticket: `ticket.<value>`
SUBPROTOCOL = "speech-tools"  # offered beside a ticket; the server answers with it, never the ticket


SPENT = (
    "the socket ticket is unknown, used or expired; ask POST /v1/socket-tickets for a new one right "
    "before opening the socket"
)


def new_ticket() -> str:
    """An unguessable ticket (192 random bits)."""
    return secrets.token_urlsafe(24)


class SocketTickets(Protocol):
    """Where tickets are kept: each names a principal, lives `ttl_seconds`, and is redeemed once."""

    ttl_seconds: float

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`."""
        ...

    def redeem(self, ticket: str) -> str:
        """The principal id `ticket` was issued to; the ticket is spent.

        Raises:
            Unauthorized: unknown, spent or expired.
            BackendUnavailable: the shared store cannot be reached.
        """
        ...


class MemorySocketTickets:
    """Tickets of this process (one front-end). At most `max_outstanding` are kept (the oldest go
    first), so asking for many costs nothing."""

    def __init__(
        self, ttl_seconds: float, max_outstanding: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_outstanding = max_outstanding
        self._clock = clock
        self._issued: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`."""
        ticket = new_ticket()
        self._issued[ticket] = (principal_id, self._clock() + self.ttl_seconds)
        while len(self._issued) > self.max_outstanding:
            self._issued.popitem(last=False)
        return ticket

    def redeem(self, ticket: str) -> str:
        """The principal id `ticket` was issued to; the ticket is spent.

        Raises:
            Unauthorized: unknown, spent or expired.
        """
        issued = self._issued.pop(ticket, None)
        if issued is None or issued[1] < self._clock():
            raise Unauthorized(SPENT)
        return issued[0]


def offered_ticket(subprotocols: list[str]) -> str | None:
    """The ticket a WebSocket handshake offers among its subprotocols, if any."""
    return next((p[len(TICKET_PREFIX) :] for p in subprotocols if p.startswith(TICKET_PREFIX)), None)
