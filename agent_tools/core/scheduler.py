"""Where every surface's engine work waits its turn: admission per engine, sentence slots, deadlines,
cancellation between sentences, and the in-flight count a drain waits for."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from agent_tools.core.admission import Admission, SentenceSlots
from agent_tools.core.errors import DeadlineExceeded
from agent_tools.core.metrics import Metrics
from agent_tools.settings import ServiceSettings
from speech_backend import SpeechChunk

T = TypeVar("T")


class Scheduler:
    """The admissions and slots of one process, shared by every surface."""

    def __init__(self, settings: ServiceSettings) -> None:
        queue, wait = settings.max_queued, settings.max_queue_wait_seconds
        # Utterances (whole clips and streams) are admitted as calls, then share the synthesis
        # slots sentence by sentence, a call's first sentence ahead of later ones.
        self.synthesis = Admission("synthesis", settings.max_utterances, queue, wait)
        self.sentences = SentenceSlots(settings.synthesis_slots)
        self.recognition = Admission("recognition", settings.recognition_slots, queue, wait)
        # Voice activity of live streams: short steps, one per frame, each waiting its turn.
        self.voice_activity = Admission("voice_activity", settings.voice_activity_slots, 10_000, wait)
        self.in_flight = 0  # calls and engine work, on every surface (a drain waits for 0)

    def shutdown(self) -> None:
        """Stop admitting work; queued and later calls get `busy`, running calls finish."""
        for admission in (self.synthesis, self.recognition, self.voice_activity):
            admission.close()

    def sample(self, metrics: Metrics) -> None:
        """Queue depth and slots in use, read into the gauges now."""
        for admission in (self.synthesis, self.recognition, self.voice_activity):
            metrics.queue_depth.labels(admission.name).set(admission.waiting)
            metrics.in_use.labels(admission.name).set(admission.in_use)

    def track(self) -> InFlight:
        """A block counted in flight (a whole MCP call, an encoding step)."""
        return InFlight(self)

    async def run(self, admission: Admission, work: Callable[[], T], deadline_s: float, what: str) -> T:
        """Run `work` in a thread once admitted, within `deadline_s` seconds of the call's start;
        counted in flight meanwhile.

        Raises:
            Busy: no slot in time, or shutting down.
            DeadlineExceeded: the deadline passed; the work was cancelled at its next check.
        """
        with self.track():
            try:
                with anyio.fail_after(deadline_s):
                    async with admission.slot():
                        return await anyio.to_thread.run_sync(work)
            except TimeoutError as exc:
                raise DeadlineExceeded(
                    f"{what} did not finish within {deadline_s:g} s and was stopped; retry with less input"
                ) from exc

    async def step(self, admission: Admission, work: Callable[[], T]) -> T:
        """Run one short step of `work` in a thread once admitted (no deadline of its own)."""
        with self.track():
            async with admission.slot():
                return await anyio.to_thread.run_sync(work)

    def sentence_by_sentence(self, chunks: Iterator[SpeechChunk], first: bool) -> Iterator[SpeechChunk]:
        """In a worker thread: each sentence of `chunks` synthesized under a sentence slot (the first
        one ahead of other calls' later sentences when `first`), stopping when the call is cancelled.
        However it ends, `chunks` is closed here: an engine elsewhere (a pool replica) stops now, not
        when the garbage collector gets to it."""
        try:
            while True:
                anyio.from_thread.run(
                    self.sentences.acquire, SentenceSlots.FIRST if first else SentenceSlots.LATER
                )
                try:
                    chunk = next(chunks, None)
                finally:
                    anyio.from_thread.run_sync(self.sentences.release)
                if chunk is None:
                    return
                anyio.from_thread.check_cancelled()
                first = False
                yield chunk
        finally:
            if isinstance(chunks, Generator):
                chunks.close()


class InFlight:
    """Counts a block in flight for as long as it runs."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def __enter__(self) -> None:
        self.scheduler.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self.scheduler.in_flight -= 1
