"""Admission and sentence scheduling, without engines."""

from __future__ import annotations

import anyio
import pytest

from agent_tools.core.admission import Admission, SentenceSlots
from agent_tools.core.errors import Busy

pytestmark = pytest.mark.anyio


async def test_first_sentences_of_new_calls_go_ahead_of_later_sentences_of_running_ones():
    slots = SentenceSlots(1)
    order: list[str] = []
    await slots.acquire(SentenceSlots.LATER)  # a running stream holds the slot

    async def want(name: str, priority: int) -> None:
        await slots.acquire(priority)
        order.append(name)
        slots.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "later-1", SentenceSlots.LATER)
        await anyio.sleep(0.01)
        tg.start_soon(want, "later-2", SentenceSlots.LATER)
        await anyio.sleep(0.01)
        tg.start_soon(want, "first-of-new-call", SentenceSlots.FIRST)
        await anyio.sleep(0.01)
        slots.release()
    assert order == ["first-of-new-call", "later-1", "later-2"]


async def test_a_cancelled_waiter_leaves_the_queue_and_the_slot_is_not_lost():
    slots = SentenceSlots(1)
    await slots.acquire(SentenceSlots.FIRST)
    with anyio.move_on_after(0.05):
        await slots.acquire(SentenceSlots.FIRST)
    slots.release()
    with anyio.fail_after(1):
        await slots.acquire(SentenceSlots.LATER)


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
