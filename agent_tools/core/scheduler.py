"""Where every surface's engine work waits its turn: admission per engine, sentence slots, deadlines,
cancellation between sentences, and the in-flight count a drain waits for."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from agent_tools.core.admission import Admission, Priority, PrioritySlots
from agent_tools.core.cost import Cost
from agent_tools.core.errors import DeadlineExceeded
from agent_tools.core.metrics import Metrics
from agent_tools.core.tracing import Tracing
from agent_tools.settings import ServiceSettings
from speech_backend import SpeechChunk
from speech_backend.priority import ENGINE_PRIORITY

T = TypeVar("T")


class Scheduler:
    """The admissions and slots of one process, shared by every surface."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics, tracing: Tracing | None = None) -> None:
        queue, wait = settings.max_queued, settings.max_queue_wait_seconds
        promote = settings.promote_after_seconds
        self.metrics = metrics
        self.tracing = tracing or Tracing.off()
        # Utterances (whole clips and streams) are admitted as calls, then share the synthesis
        # slots sentence by sentence, a call's first sentence ahead of later ones.
        self.synthesis = Admission("synthesis", settings.max_utterances, queue, wait)
        self.sentences = PrioritySlots(settings.synthesis_slots, promote)
        # Live finals and partials ahead of whole-file transcriptions; while live streams are open,
        # slots kept for their finals.
        self.recognition = Admission("recognition", settings.recognition_slots, queue, wait, promote)
        self.live_reserved_slots = settings.live_reserved_slots
        self.live_streams = 0
        # Voice activity of live streams: short steps, one per frame, each waiting its turn.
        self.voice_activity = Admission("voice_activity", settings.voice_activity_slots, 10_000, wait)
        self.in_flight = 0  # calls and engine work, on every surface (a drain waits for 0)

    def shutdown(self) -> None:
        """Stop admitting work; queued and later calls get `busy`, running calls finish."""
        for admission in (self.synthesis, self.recognition, self.voice_activity):
            admission.close()

    def sample(self) -> None:
        """Queue depth and slots in use, read into the gauges now."""
        metrics = self.metrics
        for admission in (self.synthesis, self.recognition, self.voice_activity):
            metrics.queue_depth.labels(admission.name).set(admission.waiting)
            metrics.in_use.labels(admission.name).set(admission.in_use)
        metrics.queue_depth.labels("sentences").set(self.sentences.waiting)
        metrics.in_use.labels("sentences").set(self.sentences.in_use)

    @contextmanager
    def live_stream(self) -> Iterator[None]:
        """A live stream is open for the block: recognition keeps slots for live finals meanwhile."""
        self.live_streams += 1
        self.recognition.reserve(self.live_reserved_slots)
        try:
            yield
        finally:
            self.live_streams -= 1
            if not self.live_streams:
                self.recognition.reserve(0)

    def track(self) -> InFlight:
        """A block counted in flight (a whole MCP call, an encoding step)."""
        return InFlight(self)

    def waited(self, engine: str, seconds: float, cost: Cost | None) -> None:
        """Count `seconds` spent waiting for a slot of `engine`, for the call and the metrics."""
        self.metrics.queue_wait.labels(engine).observe(seconds)
        if cost is not None:
            cost.queue_seconds += seconds

    async def run(
        self,
        admission: Admission,
        work: Callable[[], T],
        deadline_s: float,
        what: str,
        *,
        priority: Priority = Priority.FIRST_AUDIO,
        cost: Cost | None = None,
        max_wait: float | None = None,
    ) -> T:
        """Run `work` in a thread once admitted (by `priority`, waiting at most `max_wait` seconds
        when given, else the admission's bound), within `deadline_s` seconds of the call's start;
        counted in flight meanwhile, the wait for the slot counted in `cost`.

        Raises:
            Busy: no slot in time, or shutting down.
            DeadlineExceeded: the deadline passed; the work was cancelled at its next check.
        """
        with self.track():
            try:
                with anyio.fail_after(deadline_s):
                    asked = time.perf_counter()
                    async with AsyncExitStack() as held:
                        attributes = {"speech.priority": priority.name.lower()}
                        with self.tracing.span(f"queue {admission.name}", attributes):
                            await held.enter_async_context(admission.slot(priority, max_wait))
                        self.waited(admission.name, time.perf_counter() - asked, cost)
                        # the work's thread sees it, and tells an engine elsewhere (a pool replica)
                        token = ENGINE_PRIORITY.set(priority)
                        try:
                            return await anyio.to_thread.run_sync(work)
                        finally:
                            ENGINE_PRIORITY.reset(token)
            except TimeoutError as exc:
                raise DeadlineExceeded(
                    f"{what} did not finish within {deadline_s:g} s and was stopped; retry with less input"
                ) from exc

    async def step(self, admission: Admission, work: Callable[[], T]) -> T:
        """Run one short step of `work` in a thread once admitted (no deadline of its own)."""
        with self.track():
            async with admission.slot():
                return await anyio.to_thread.run_sync(work)

    def sentence_by_sentence(
        self, chunks: Iterator[SpeechChunk], first: bool, cost: Cost | None = None
    ) -> Iterator[SpeechChunk]:
        """In a worker thread: each sentence of `chunks` synthesized under a sentence slot (the first
        one ahead of other calls' later sentences when `first`), stopping when the call is cancelled;
        waits and synthesis counted in `cost`. However it ends, `chunks` is closed here: an engine
        elsewhere (a pool replica) stops now, not when the garbage collector gets to it."""
        try:
            tracer = self.tracing.tracer
            while True:
                asked = time.perf_counter()
                priority = Priority.FIRST_AUDIO if first else Priority.LATER_AUDIO
                with tracer.start_as_current_span(
                    "queue sentences", attributes={"speech.priority": priority.name.lower()}
                ):
                    anyio.from_thread.run(self.sentences.acquire, priority)
                self.waited("sentences", time.perf_counter() - asked, cost)
                ENGINE_PRIORITY.set(priority)  # a pool replica starting the stream now is told
                started = time.perf_counter()
                with tracer.start_as_current_span("synthesize sentence") as span:
                    try:
                        chunk = next(chunks, None)
                    finally:
                        anyio.from_thread.run_sync(self.sentences.release)
                        if cost is not None:
                            cost.engine_seconds += time.perf_counter() - started
                    if chunk is None:  # asking for the next sentence learned there is none
                        span.update_name("synthesis end")
                    else:
                        span.set_attributes(
                            {
                                "speech.sentence.index": chunk.index,
                                "speech.audio_seconds": chunk.audio.duration,
                            }
                        )
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
