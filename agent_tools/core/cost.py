"""What a call spent: time waiting for engine slots, time in the engine, against the wall clock and
the audio it made or heard."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from agent_tools.core.metrics import Metrics

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallCost:
    """A call's cost as its result reports it.

    `real_time_factor` is engine seconds per audio second (below 1: faster than real time); the
    queue and engine times overlap nothing else, so `queue_ms + engine_ms <= wall_ms`.
    """

    queue_ms: int
    engine_ms: int
    wall_ms: int
    real_time_factor: float

    def as_dict(self) -> dict[str, int | float]:
        """The fields, for events and structured results."""
        return {
            "queue_ms": self.queue_ms,
            "engine_ms": self.engine_ms,
            "wall_ms": self.wall_ms,
            "real_time_factor": self.real_time_factor,
        }

    def headers(self) -> dict[str, str]:
        """The fields as HTTP response headers."""
        return {
            "x-speech-queue-ms": str(self.queue_ms),
            "x-speech-engine-ms": str(self.engine_ms),
            "x-speech-wall-ms": str(self.wall_ms),
            "x-speech-real-time-factor": f"{self.real_time_factor:g}",
        }


@dataclass
class Cost:
    """Accumulates one call's waits and engine work (from the event loop and worker threads; each
    addition is a single float update, one at a time per call)."""

    started: float = field(default_factory=time.perf_counter)
    queue_seconds: float = 0.0
    engine_seconds: float = 0.0

    @contextmanager
    def working(self) -> Iterator[None]:
        """Count the block as engine time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.engine_seconds += time.perf_counter() - start

    def timed(self, work: Callable[[], T]) -> Callable[[], T]:
        """`work`, counted as engine time when it runs."""

        def run() -> T:
            with self.working():
                return work()

        return run

    def report(self, audio_seconds: float) -> CallCost:
        """The cost so far, for a call that made or heard `audio_seconds` of audio."""
        wall = time.perf_counter() - self.started
        rtf = self.engine_seconds / audio_seconds if audio_seconds > 0 else 0.0
        return CallCost(  # parts rounded down, the whole up: the parts never add up past it
            queue_ms=math.floor(self.queue_seconds * 1000),
            engine_ms=math.floor(self.engine_seconds * 1000),
            wall_ms=math.ceil(wall * 1000),
            real_time_factor=round(rtf, 4),
        )


def settle(
    cost: Cost, audio_seconds: float, metrics: Metrics, what: str, engine: str, **details: object
) -> CallCost:
    """What a finished call cost: its real-time factor counted in the metrics of `engine`, and one
    log line `<what> done` (`details` never hold text, transcripts or audio)."""
    spent = cost.report(audio_seconds)
    if audio_seconds > 0:
        metrics.real_time_factor.labels(engine).observe(spent.real_time_factor)
    timing = {"queue_ms": spent.queue_ms, "engine_ms": spent.engine_ms, "latency_s": spent.wall_ms / 1000}
    logger.info(f"{what} done", extra={**details, "audio_s": round(audio_seconds, 3), **timing})
    return spent
