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
from agent_tools.core.errors import Busy, DeadlineExceeded
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
        # Live utterances a short-utterance recognizer serves (its own threads, not Whisper's).
        self.short_recognition = Admission(
            "short_recognition", settings.short_recognition_slots, queue, wait, promote
        )
        self.live_streams = 0
        # Voice activity of live streams: short steps, one per frame, each waiting its turn.
        self.voice_activity = Admission("voice_activity", settings.voice_activity_slots, 10_000, wait)
        self.in_flight = 0  # calls, utterances and live streams, on every surface (a drain waits for 0)
        self.closed = False
        self._on_shutdown: set[Callable[[], None]] = set()

    def shutdown(self) -> None:
        """Stop admitting work: queued and later calls get `busy`, running calls and utterances
        finish, open live streams are told to wind up (see `live_stream`)."""
        self.closed = True
        for admission in (self.synthesis, self.recognition, self.short_recognition, self.voice_activity):
            admission.close()
        for wind_up in list(self._on_shutdown):
            wind_up()

    def check_open(self) -> None:
        """Raises Busy once a shutdown has begun: new calls go to another server."""
        if self.closed:
            raise Busy("the server is shutting down; retry on another (or in a moment)", retry_after_ms=1000)

    def sample(self) -> None:
        """Queue depth and slots in use, read into the gauges now."""
        metrics = self.metrics
        for admission in (self.synthesis, self.recognition, self.short_recognition, self.voice_activity):
            metrics.queue_depth.labels(admission.name).set(admission.waiting)
            metrics.in_use.labels(admission.name).set(admission.in_use)
        metrics.queue_depth.labels("sentences").set(self.sentences.waiting)
        metrics.in_use.labels("sentences").set(self.sentences.in_use)

    @contextmanager
    def live_stream(self, wind_up: Callable[[], None]) -> Iterator[None]:
        """A live stream is open for the block, counted in flight: recognition keeps slots for live
        finals meanwhile. A shutdown calls `wind_up` (in the event loop's thread): the stream should
        stop taking audio and finish what it owes; its voice activity and finals are still served.

        Raises:
            Busy: a shutdown has begun.
        """
        self.check_open()
        self.live_streams += 1
        self.recognition.reserve(self.live_reserved_slots)
        self._on_shutdown.add(wind_up)
        try:
            with self.track():
                yield
        finally:
            self._on_shutdown.discard(wind_up)
            self.live_streams -= 1
            if not self.live_streams:
                self.recognition.reserve(0)

    async def hold(self, admission: Admission, cost: Cost | None = None) -> HeldSlot:
        """One of `admission`'s slots, held (and counted in flight) until the holder releases it: an
        utterance admitted before its response starts, then spoken in one or more pieces.

        Raises:
            Busy: no slot in time, the queue is full, or shutting down.
        """
        stack = AsyncExitStack()
        asked = time.perf_counter()
        with self.tracing.span(f"queue {admission.name}", {"speech.priority": "first_audio"}):
            await stack.enter_async_context(admission.slot())
        stack.enter_context(self.track())
        self.waited(admission.name, time.perf_counter() - asked, cost)
        return HeldSlot(stack)

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
        held: bool = False,
        continuing: bool = False,
    ) -> T:
        """Run `work` in a thread once admitted (by `priority`, waiting at most `max_wait` seconds
        when given, else the admission's bound; at once when the caller `held` a slot already),
        within `deadline_s` seconds of the call's start; counted in flight meanwhile, the wait for
        the slot counted in `cost`. Work `continuing` a call admitted before a shutdown is served
        while the server drains.

        Raises:
            Busy: no slot in time, or shutting down.
            DeadlineExceeded: the deadline passed; the work was cancelled at its next check.
        """
        with self.track():
            try:
                with anyio.fail_after(deadline_s):
                    asked = time.perf_counter()
                    async with AsyncExitStack() as slot:
                        if not held:
                            attributes = {"speech.priority": priority.name.lower()}
                            with self.tracing.span(f"queue {admission.name}", attributes):
                                await slot.enter_async_context(
                                    admission.slot(priority, max_wait, continuing=continuing)
                                )
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

    async def step(self, admission: Admission, work: Callable[[], T], *, continuing: bool = False) -> T:
        """Run one short step of `work` in a thread once admitted (no deadline of its own; served
        during a drain when `continuing` a call admitted before it)."""
        with self.track():
            async with admission.slot(continuing=continuing):
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


class HeldSlot:
    """An admission slot held across tasks until `release` (which may be called more than once)."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    async def release(self) -> None:
        """Give the slot back (and stop counting it in flight)."""
        await self._stack.aclose()


class InFlight:
    """Counts a block in flight for as long as it runs."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def __enter__(self) -> None:
        self.scheduler.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self.scheduler.in_flight -= 1
