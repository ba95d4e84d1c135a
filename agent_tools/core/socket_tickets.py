"""Short-lived, single-use tickets that let a browser open a WebSocket as a principal: a browser
cannot set an `Authorization` header on a socket, so the page asks for a ticket with its bearer
token (`POST /v1/socket-tickets`) and offers it as a WebSocket subprotocol — never in a URL."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import anyio.to_thread

from agent_tools.core.errors import Busy
from policies import Policy, Principal, Unauthorized

TICKET_PREFIX = "ticket."  # the subprotocol that carries a ticket: `ticket.<value>`
SUBPROTOCOL = "speech-tools"  # offered beside a ticket; the server answers with it, never the ticket
MAX_PER_PRINCIPAL = 16  # tickets one principal may have outstanding (a page opens a few sockets)


SPENT = (
    "the socket ticket is unknown, used or expired; ask POST /v1/socket-tickets for a new one right "
    "before opening the socket"
)


def new_ticket() -> str:
    """An unguessable ticket (192 random bits)."""
    return secrets.token_urlsafe(24)


class SocketTickets(Protocol):
    """Where tickets are kept: each names a principal, lives `ttl_seconds`, and is redeemed once; a
    principal has a bounded number outstanding (asking for more drops its own oldest, never another
    principal's)."""

    ttl_seconds: float

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`.

        Raises:
            Busy: the store is full (of other principals' tickets).
            BackendUnavailable: the shared store cannot be reached.
        """
        ...

    def redeem(self, ticket: str) -> str:
        """The principal id `ticket` was issued to; the ticket is spent.

        Raises:
            Unauthorized: unknown, spent or expired.
            BackendUnavailable: the shared store cannot be reached.
        """
        ...


class MemorySocketTickets:
    """Tickets of this process (one front-end). Each principal has at most `per_principal` outstanding
    (its own oldest go first, never another's); past `max_outstanding` in all, issuing is refused
    with `busy` until tickets are used or expire."""

    def __init__(
        self,
        ttl_seconds: float,
        per_principal: int = MAX_PER_PRINCIPAL,
        max_outstanding: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.per_principal = per_principal
        self.max_outstanding = max_outstanding
        self._clock = clock
        self._issued: OrderedDict[str, tuple[str, float]] = OrderedDict()  # oldest first
        self._by_principal: dict[str, OrderedDict[str, None]] = {}

    def issue(self, principal_id: str) -> str:
        """A new ticket for `principal_id`.

        Raises:
            Busy: `max_outstanding` tickets are outstanding.
        """
        self._expire()
        mine = self._by_principal.setdefault(principal_id, OrderedDict())
        while len(mine) >= self.per_principal:
            self._forget(next(iter(mine)))
        if len(self._issued) >= self.max_outstanding:
            retry_ms = max(1, int(self.ttl_seconds * 1000))
            raise Busy(f"too many socket tickets are outstanding; retry after {retry_ms} ms", retry_ms)
        ticket = new_ticket()
        self._issued[ticket] = (principal_id, self._clock() + self.ttl_seconds)
        self._by_principal.setdefault(principal_id, mine)[ticket] = None
        return ticket

    def redeem(self, ticket: str) -> str:
        """The principal id `ticket` was issued to; the ticket is spent.

        Raises:
            Unauthorized: unknown, spent or expired.
        """
        issued = self._forget(ticket)
        if issued is None or issued[1] < self._clock():
            raise Unauthorized(SPENT)
        return issued[0]

    def _forget(self, ticket: str) -> tuple[str, float] | None:
        issued = self._issued.pop(ticket, None)
        if issued is not None:
            mine = self._by_principal[issued[0]]
            del mine[ticket]
            if not mine:
                del self._by_principal[issued[0]]
        return issued

    def _expire(self) -> None:
        """Drop expired tickets (all live as long, so the oldest expire first)."""
        now = self._clock()
        while self._issued:
            ticket, (_, expires) = next(iter(self._issued.items()))
            if expires >= now:
                return
            self._forget(ticket)


async def issue_ticket(tickets: SocketTickets, policy: Policy, principal: Principal) -> str:
    """A ticket for `principal`, counted against its rate as a call (the store may be Redis: off the
    event loop).

    Raises:
        RateLimited, Busy, BackendUnavailable (and the policy's refusals of the caller).
    """

    def issue() -> str:
        who = policy.resolve(principal)
        policy.check_socket_ticket(who)
        return tickets.issue(who.id)

    return await anyio.to_thread.run_sync(issue)


def offered_ticket(subprotocols: list[str]) -> str | None:
    """The ticket a WebSocket handshake offers among its subprotocols, if any."""
    return next((p[len(TICKET_PREFIX) :] for p in subprotocols if p.startswith(TICKET_PREFIX)), None)


async def redeem_ticket(tickets: SocketTickets, policy: Policy, ticket: str) -> Principal:
    """The principal a socket ticket was issued to, the ticket spent (off the event loop: the store
    may be Redis).

    Raises:
        Unauthorized: unknown, spent or expired; or its principal has left the policy since.
    """
    principal = policy.config.principal(await anyio.to_thread.run_sync(tickets.redeem, ticket))
    if principal is None:
        raise Unauthorized("the principal of this socket ticket is no longer in the policy")
    return principal
