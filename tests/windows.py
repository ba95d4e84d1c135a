"""Rates and quotas count in fixed windows of the wall clock (a minute, an hour, a day): a test that
counts calls against one begins where the window has room to finish."""

from __future__ import annotations

import time

import anyio

MINUTE, HOUR, DAY = 60, 3600, 86400


async def room_in_the_window(seconds: float, window: int = MINUTE) -> None:
    """Wait, if needed, until at least `seconds` remain before the current `window` (a minute by
    default) turns, so a turn mid-test cannot reset the counts the test expects to reach a limit."""
    left = window - time.time() % window
    if left < seconds:
        await anyio.sleep(left + 0.1)
