"""Admission control per engine: a few slots, a bounded queue, a bounded wait, then `busy` at once."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from agent_tools.core.errors import Busy


class Admission:
    """Slots for one engine; callers beyond the queue bound, or waiting too long, get `Busy`."""

    def __init__(self, name: str, slots: int, max_waiting: int, max_wait_seconds: float) -> None:
        self.name = name
        self.slots = slots
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._limiter = anyio.CapacityLimiter(slots)
        self.waiting = 0
        self.closed = False

    @property
    def in_use(self) -> int:
        """Slots currently running work."""
        return int(self._limiter.borrowed_tokens)

    def close(self) -> None:
        """Stop admitting: later and queued callers get `Busy` (shutdown)."""
        self.closed = True

    def _busy(self, why: str) -> Busy:
        retry_ms = int(max(0.5, self.max_wait_seconds) * 1000)
        return Busy(f"the {self.name} engine is {why}; retry after {retry_ms} ms", retry_after_ms=retry_ms)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block.

        Raises:
            Busy: shutting down, the queue is full, or no slot freed within the maximum wait.
        """
        if self.closed:
            raise self._busy("shutting down")
        token = object()
        if self._limiter.available_tokens < 1 and self.waiting >= self.max_waiting:
            raise self._busy(f"at capacity ({self.slots} running, {self.waiting} queued)")
        self.waiting += 1
        try:
            with anyio.move_on_after(self.max_wait_seconds) as scope:
                await self._limiter.acquire_on_behalf_of(token)
        finally:
            self.waiting -= 1
        if scope.cancelled_caught:
            raise self._busy(f"still full after {self.max_wait_seconds:g} s")
        try:
            if self.closed:
                raise self._busy("shutting down")
            yield
        finally:
            self._limiter.release_on_behalf_of(token)


class SentenceSlots:
    """Engine slots handed out one sentence at a time, first sentences of a call ahead of later ones,
    otherwise in arrival order: a new stream's first audio waits for at most one sentence per slot."""

    FIRST, LATER = 0, 1

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[int, int, anyio.Event]] = []
        self._order = 0

    async def acquire(self, priority: int) -> None:
        """Wait for a slot; `FIRST` for a call's first sentence, `LATER` for the rest."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        self._order += 1
        entry = (priority, self._order, anyio.Event())
        heapq.heappush(self._waiting, entry)
        try:
            await entry[2].wait()
        except BaseException:
            if entry[2].is_set():
                self.release()  # granted just as we were cancelled: pass it on
            else:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
            raise

    @property
    def waiting(self) -> int:
        """Sentences waiting for a slot."""
        return len(self._waiting)

    def release(self) -> None:
        """Give the slot to the most urgent waiter, or free it."""
        if self._waiting:
            heapq.heappop(self._waiting)[2].set()
        else:
            self._free += 1
