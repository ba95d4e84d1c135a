"""Shared by the benchmark scripts: the text they speak and how they time things."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

NEWS = (
    "Good evening, and welcome to the late news. Tonight the city council approved a new budget for "
    "public transport. Buses will run every ten minutes on the main routes from next spring. "
    "In sport, the home team won three to one after a difficult first half. "
    "Tomorrow will be cloudy in the morning, with sunshine later and a high of eighteen degrees. "
    "That is all for tonight; thank you for watching, and good night."
)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
