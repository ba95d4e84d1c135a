"""Admission control per engine: a few slots handed out by priority, a bounded queue, a bounded wait,
then `busy` at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from agent_tools.core.errors import Busy
from speech_backend.priority import Priority, PrioritySlots

__all__ = ["Admission", "Priority", "PrioritySlots"]


class Admission:
    """Slots for one engine; callers beyond the queue bound, or waiting too long, get `Busy`."""

    def __init__(
        self,
        name: str,
        slots: int,
        max_waiting: int,
        max_wait_seconds: float,
        promote_after_seconds: float | None = None,
        reserved: int = 0,
    ) -> None:
        self.name = name
        self.slots = slots
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._slots = PrioritySlots(slots, promote_after_seconds or max_wait_seconds, reserved=reserved)
        self.closed = False

    def reserve(self, reserved: int) -> None:
        """Keep `reserved` slots for urgent work from now on (see `PrioritySlots`)."""
        self._slots.reserve(reserved)

    @property
    def in_use(self) -> int:
        """Slots currently running work."""
        return self._slots.in_use

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot."""
        return self._slots.waiting

    def close(self) -> None:
        """Stop admitting: later and queued callers get `Busy` (shutdown)."""
        self.closed = True

    def _busy(self, why: str) -> Busy:
        retry_ms = int(max(0.5, self.max_wait_seconds) * 1000)
        return Busy(f"the {self.name} engine is {why}; retry after {retry_ms} ms", retry_after_ms=retry_ms)

    @asynccontextmanager
    async def slot(
        self,
        priority: Priority = Priority.FIRST_AUDIO,
        max_wait: float | None = None,
        *,
        continuing: bool = False,
    ) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block, waiting for it at most `max_wait` seconds
        (at most the admission's bound). Work `continuing` a call already admitted (a live stream's
        voice activity and finals) is bounded by that call, not by the queue's length, and is still
        served while the server drains.

        Raises:
            Busy: shutting down (new work), the queue is full (new work), or no slot freed within
                the wait.
        """
        if self.closed and not continuing:
            raise self._busy("shutting down")
        if not continuing and not self._slots.free and self.waiting >= self.max_waiting:
            raise self._busy(f"at capacity ({self.slots} running, {self.waiting} queued)")
        wait = self.max_wait_seconds if max_wait is None else min(max_wait, self.max_wait_seconds)
        if wait <= 0:  # a slot free now or none: never queued, not even for a moment
            if not self._slots.try_acquire(priority):
                raise self._busy("full now (asked not to wait)")
        else:
            with anyio.move_on_after(wait) as scope:
                await self._slots.acquire(priority)
            if scope.cancelled_caught:
                raise self._busy(f"still full after {wait:g} s")
        try:
            if self.closed and not continuing:
                raise self._busy("shutting down")
            yield
        finally:
            self._slots.release()
