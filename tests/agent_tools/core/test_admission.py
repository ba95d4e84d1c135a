"""Admission and slots by priority, without engines (a fake clock where waiting time matters)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.lowlevel
import pytest

from agent_tools.core.admission import Admission, Priority, PrioritySlots
from agent_tools.core.errors import Busy

pytestmark = pytest.mark.anyio


async def settle() -> None:
    """Let every task started so far run until it waits (on a slot, or done): a few turns of the
    event loop, not a span of time."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def granted_order(slots: PrioritySlots, arrivals: list[tuple[str, Priority]]) -> list[str]:
    """Queue `arrivals` in turn behind a held slot, then free it: the order they got it."""
    order: list[str] = []
    await slots.acquire(Priority.LATER_AUDIO)  # running work holds the only slot

    async def want(name: str, priority: Priority) -> None:
        await slots.acquire(priority)
        order.append(name)
        slots.release()

    async with anyio.create_task_group() as tg:
        for name, priority in arrivals:
            tg.start_soon(want, name, priority)
            await settle()  # arrive in this order
        assert slots.waiting == len(arrivals)
        slots.release()
    return order


async def test_first_sentences_of_new_calls_go_ahead_of_later_sentences_of_running_ones():
    arrivals = [("later-1", Priority.LATER_AUDIO), ("later-2", Priority.LATER_AUDIO)]
    arrivals.append(("first-of-new-call", Priority.FIRST_AUDIO))
    order = await granted_order(PrioritySlots(1, promote_after_seconds=60), arrivals)
    assert order == ["first-of-new-call", "later-1", "later-2"]


async def test_live_finals_then_partials_go_ahead_of_queued_whole_file_transcriptions():
    arrivals = [
        ("batch-1", Priority.BATCH),
        ("partial", Priority.LIVE_PARTIAL),
        ("batch-2", Priority.BATCH),
        ("final", Priority.LIVE_FINAL),
    ]
    order = await granted_order(PrioritySlots(1, promote_after_seconds=60), arrivals)
    assert order == ["final", "partial", "batch-1", "batch-2"]


async def test_work_waiting_past_the_promotion_bound_goes_ahead_of_more_urgent_arrivals():
    clock = FakeClock()
    slots = PrioritySlots(1, promote_after_seconds=5, clock=clock)
    await slots.acquire(Priority.LIVE_FINAL)
    order: list[str] = []

    async def want(name: str, priority: Priority) -> None:
        await slots.acquire(priority)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "batch", Priority.BATCH)
        await settle()
        clock.now = 4.0
        tg.start_soon(want, "final-at-4s", Priority.LIVE_FINAL)
        await settle()
        slots.release()  # the batch has waited 4 s of 5: the final goes first
        await settle()
        clock.now = 5.0
        tg.start_soon(want, "final-at-5s", Priority.LIVE_FINAL)
        await settle()
        slots.release()  # the batch has waited 5 s: now it goes ahead of the new final
        await settle()
        slots.release()
    assert order == ["final-at-4s", "batch", "final-at-5s"]


async def test_a_cancelled_waiter_leaves_the_queue_and_the_slot_is_not_lost():
    slots = PrioritySlots(1, promote_after_seconds=60)
    await slots.acquire(Priority.FIRST_AUDIO)
    with anyio.move_on_after(0.05):
        await slots.acquire(Priority.FIRST_AUDIO)
    assert slots.waiting == 0
    slots.release()
    with anyio.fail_after(1):
        await slots.acquire(Priority.LATER_AUDIO)
    assert slots.in_use == 1


async def test_admission_is_busy_at_once_when_slots_and_queue_are_full():
    admission = Admission("test", slots=1, max_waiting=0, max_wait_seconds=5)
    async with admission.slot():
        with anyio.fail_after(1), pytest.raises(Busy) as info:
            async with admission.slot():
                pass
    assert (info.value.retry_after_ms or 0) > 0
    admission.close()
    with pytest.raises(Busy, match="shutting down"):
        async with admission.slot():
            pass


async def test_admission_hands_its_slots_out_by_priority_and_waits_are_bounded():
    admission = Admission("test", slots=1, max_waiting=4, max_wait_seconds=0.2)
    order: list[str] = []

    async def want(name: str, priority: Priority) -> None:
        async with admission.slot(priority):
            order.append(name)

    async with admission.slot(Priority.BATCH):
        async with anyio.create_task_group() as tg:
            tg.start_soon(want, "batch", Priority.BATCH)
            await settle()
            tg.start_soon(want, "final", Priority.LIVE_FINAL)
            await settle()
            assert admission.waiting == 2
            tg.cancel_scope.cancel()  # (cancelled waiters leave the queue)
        assert admission.waiting == 0
        with pytest.raises(Busy, match="still full"):
            async with admission.slot(Priority.FIRST_AUDIO):
                pass
    async with anyio.create_task_group() as tg, admission.slot(Priority.BATCH):
        tg.start_soon(want, "batch", Priority.BATCH)
        await settle()
        tg.start_soon(want, "final", Priority.LIVE_FINAL)
        await settle()
    assert order == ["final", "batch"]


async def test_a_reserved_slot_is_kept_for_urgent_work_and_freed_with_the_reservation():
    clock = FakeClock()
    slots = PrioritySlots(2, promote_after_seconds=5, clock=clock, reserved=1)
    await slots.acquire(Priority.BATCH)  # the unreserved slot
    order: list[str] = []

    async def want(name: str, priority: Priority) -> None:
        await slots.acquire(priority)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "batch-2", Priority.BATCH)
        tg.start_soon(want, "partial", Priority.LIVE_PARTIAL)
        await settle()
        assert order == [] and slots.waiting == 2 and slots.in_use == 1  # a slot free, but reserved
        tg.start_soon(want, "final", Priority.LIVE_FINAL)
        await settle()
        assert order == ["final"]  # at once, beside the running batch
        slots.release()  # the final is done: its slot stays reserved
        await settle()
        assert order == ["final"]
        slots.reserve(0)  # no live stream left: the slot is anyone's
        await settle()
        assert order == ["final", "partial"]
        slots.release()
        await settle()
    assert order == ["final", "partial", "batch-2"]


async def test_overdue_work_may_take_a_reserved_slot_but_a_partial_never_does():
    clock = FakeClock()
    slots = PrioritySlots(2, promote_after_seconds=5, clock=clock, reserved=1)
    await slots.acquire(Priority.BATCH)
    await slots.acquire(Priority.LIVE_FINAL)
    order: list[str] = []

    async def want(name: str, priority: Priority) -> None:
        await slots.acquire(priority)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "partial", Priority.LIVE_PARTIAL)
        await settle()
        tg.start_soon(want, "batch-2", Priority.BATCH)
        await settle()
        clock.now = 6.0  # both overdue
        slots.release()  # the final's slot: reserved, so only the overdue batch may take it
        await settle()
        assert order == ["batch-2"]
        slots.release()  # the first batch is done: one slot free, and it is the reserved one
        await settle()
        assert order == ["batch-2"]
        slots.release()  # batch-2 is done: an unreserved slot, the partial's turn
        await settle()
    assert order == ["batch-2", "partial"]


async def test_a_slot_asked_for_without_waiting_is_had_when_free_and_busy_at_once_when_not():
    admission = Admission("test", slots=1, max_waiting=4, max_wait_seconds=30)
    async with admission.slot(Priority.LIVE_FINAL, max_wait=0):
        assert admission.in_use == 1
        with anyio.fail_after(1), pytest.raises(Busy, match="asked not to wait"):
            async with admission.slot(Priority.LIVE_FINAL, max_wait=0):
                pass
    assert admission.in_use == 0 and admission.waiting == 0


async def test_a_slot_asked_for_without_waiting_never_joins_the_queue_even_for_a_moment():
    """Others count the queue (how many wait, who gets the slot next): a caller that will not wait
    must not appear in it while its refusal is on the way."""
    admission = Admission("test", slots=1, max_waiting=4, max_wait_seconds=30)
    seen: list[int] = []

    async def refused() -> None:
        with pytest.raises(Busy):
            async with admission.slot(Priority.LIVE_FINAL, max_wait=0):
                pass

    async def watch() -> None:
        for _ in range(20):
            seen.append(admission.waiting)
            await anyio.lowlevel.checkpoint()

    async with admission.slot(Priority.BATCH), anyio.create_task_group() as tg:
        tg.start_soon(watch)
        tg.start_soon(refused)
    assert max(seen) == 0 and admission.waiting == 0


async def test_a_guess_runs_only_on_spare_capacity_never_on_a_slot_kept_for_finals():
    admission = Admission("test", slots=2, max_waiting=4, max_wait_seconds=30, reserved=1)
    async with admission.slot(Priority.LIVE_GUESS, max_wait=0):  # both free: one is spare
        with pytest.raises(Busy):  # the other is kept for finals
            async with admission.slot(Priority.LIVE_GUESS, max_wait=0):
                pass
        async with admission.slot(Priority.LIVE_FINAL, max_wait=0):
            assert admission.in_use == 2


async def test_work_of_an_admitted_call_waits_past_a_full_queue_and_through_a_shutdown():
    admission = Admission("recognition", slots=1, max_waiting=0, max_wait_seconds=5)
    got: list[str] = []

    async def continuing() -> None:
        async with admission.slot(Priority.LIVE_FINAL, continuing=True):
            got.append("final")

    async with anyio.create_task_group() as tg:
        running = AsyncExitStack()
        await running.enter_async_context(admission.slot())  # the only slot; the queue takes no one
        with pytest.raises(Busy):
            async with admission.slot(Priority.BATCH):
                pass  # a new call is refused at once
        tg.start_soon(continuing)  # a live stream's final waits its turn
        while admission.waiting == 0:
            await anyio.lowlevel.checkpoint()
        admission.close()  # a drain begins: new work is refused, the final still served
        with pytest.raises(Busy):
            async with admission.slot(Priority.BATCH):
                pass
        assert got == []
        await running.aclose()
    assert got == ["final"]
