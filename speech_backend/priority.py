"""Who goes first at an engine: the classes of work, and slots handed out by them. The service's
scheduler uses them in one process; the engine pool's replicas use them across front-ends, told each
request's class by `ENGINE_PRIORITY`, which the scheduler sets around the engine work it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum

import anyio


class Priority(IntEnum):
    """Who goes first when work waits for an engine slot (lower first).

    A caller hears nothing until its first audio, and a live speaker waits on their final; later
    sentences of a stream already playing and whole-file transcriptions can wait a little.
    """

    FIRST_AUDIO = 0  # a speech call's first sentence
    LIVE_FINAL = 1  # a live stream's utterance, finished
    LIVE_GUESS = 2  # a live stream's utterance while it pauses (its final, if the pause ends it)
    LIVE_PARTIAL = 3  # a live stream's utterance so far
    LATER_AUDIO = 4  # the rest of a speech call
    BATCH = 5  # a whole-file transcription


URGENT = Priority.LIVE_FINAL  # this and more urgent work may take a reserved slot
DISPOSABLE = (Priority.LIVE_GUESS, Priority.LIVE_PARTIAL)  # never take a reserved slot


# The class of the engine work running in this context (the scheduler sets it; a remote engine sends
# it with the request, so a pool replica serves urgent work first too).
ENGINE_PRIORITY: ContextVar[Priority] = ContextVar("engine_priority", default=Priority.FIRST_AUDIO)


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    order: int
    since: float
    granted: anyio.Event = field(default_factory=anyio.Event)


class PrioritySlots:
    """Slots given to the most urgent waiter, in arrival order within a priority. A waiter that has
    waited `promote_after_seconds` goes ahead of every later arrival, whatever its priority, so
    urgent work arriving without pause never starves the rest.

    `reserved` slots (at most all but one; `reserve` changes it) are kept for urgent work (first
    audio, live finals): an engine step once started cannot be interrupted, so without them a live
    final arriving behind a whole-file transcription's batch or another stream's partial waits for it
    to end. Less urgent work takes a reserved slot only once overdue, a partial or a guess never (a
    later one replaces it, or the final decodes anyway)."""

    def __init__(
        self,
        slots: int,
        promote_after_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        reserved: int = 0,
    ) -> None:
        self.slots = slots
        self.promote_after_seconds = promote_after_seconds
        self.reserved = max(0, min(reserved, slots - 1))
        self._clock = clock
        self._free = slots
        self._waiting: list[_Waiter] = []
        self._order = 0

    @property
    def waiting(self) -> int:
        """Work waiting for a slot."""
        return len(self._waiting)

    @property
    def in_use(self) -> int:
        """Slots running work."""
        return self.slots - self._free

    @property
    def free(self) -> bool:
        """Whether a slot is free now."""
        return self._free > 0

    def _may_take(self, priority: Priority, since: float, free: int) -> bool:
        """Whether work of `priority`, waiting since `since`, may take one of `free` slots."""
        if free > self.reserved or priority <= URGENT:
            return free > 0
        overdue = self._clock() - since >= self.promote_after_seconds
        return free > 0 and overdue and priority not in DISPOSABLE

    def try_acquire(self, priority: Priority) -> bool:
        """Take a slot if work of `priority` may have one now, ahead of no waiter; never queues."""
        if self._may_take(priority, self._clock(), self._free) and not any(
            self._may_take(w.priority, w.since, self._free) for w in self._waiting
        ):
            self._free -= 1
            return True
        return False

    async def acquire(self, priority: Priority) -> None:
        """Wait for a slot (cancellable: a cancelled waiter leaves the queue, no slot lost)."""
        if self.try_acquire(priority):
            return
        self._order += 1
        waiter = _Waiter(priority, self._order, self._clock())
        self._waiting.append(waiter)
        try:
            await waiter.granted.wait()
        except BaseException:
            if waiter.granted.is_set():
                self.release()  # granted just as we were cancelled: pass it on
            else:
                self._waiting.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot to the most urgent waiter that may take it, or free it."""
        self._free += 1
        self._dispatch()

    def reserve(self, reserved: int) -> None:
        """Keep `reserved` slots (at most all but one) for urgent work from now on."""
        self.reserved = max(0, min(reserved, self.slots - 1))
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to the most urgent waiters that may take them."""
        while self._free > 0:
            eligible = [w for w in self._waiting if self._may_take(w.priority, w.since, self._free)]
            if not eligible:
                return
            overdue = self._clock() - self.promote_after_seconds
            chosen = min(
                eligible,
                key=lambda w: (0, w.order) if w.since <= overdue else (1, w.priority, w.order),
            )
            self._waiting.remove(chosen)
            self._free -= 1
            chosen.granted.set()
