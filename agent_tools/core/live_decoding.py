"""Decoding of a live stream's utterances: finals in order and ahead of any partial, the latest
partial only, each under the recognition admission and the transcription deadline."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread

from agent_tools.core.admission import Priority
from agent_tools.core.cost import Cost, settle
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.outputs import Heard, redacted
from agent_tools.core.service import SpeechService
from policies import Principal
from speech_backend import Audio, RecognitionOptions, Transcript

MAX_WAITING_UTTERANCES = 4
Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """Audio of one utterance to decode, partially (so far) or finally (all of it)."""

    utterance: int
    audio: Audio
    start: float
    end: float
    final: bool
    stopped_at: float = 0.0


class LiveDecoder:
    """The decoding side of one stream: at most a few finals waiting, and one partial."""

    def __init__(
        self,
        service: SpeechService,
        who: Principal,
        params: LiveSettings,
        emit: Emit,
        still_open: Callable[[int], bool],
    ) -> None:
        self.service = service
        self.who = who
        self.params = params
        self.emit = emit
        self.still_open = still_open  # whether an utterance is still being heard (its partial is news)
        self.finals: deque[Job] = deque()
        self.partial: Job | None = None
        self.final_ready = anyio.Event()
        self.partial_ready = anyio.Event()
        self.space = anyio.Event()
        self.ended = False
        self.final_count = 0

    async def add_final(self, job: Job) -> None:
        """Queue an utterance for its final result, waiting while decoding is behind (the stream
        stops reading meanwhile); it supersedes any partial."""
        while len(self.finals) >= MAX_WAITING_UTTERANCES:
            self.space = anyio.Event()
            await self.space.wait()
        self.finals.append(job)
        self.partial = None
        self.final_ready.set()

    def want_partial(self, job: Job) -> None:
        """Ask for a partial result (replacing one not yet started)."""
        self.partial = job
        self.partial_ready.set()

    def end(self) -> None:
        """No more work will come: the loops finish what is queued and return."""
        self.ended = True
        self.final_ready.set()
        self.partial_ready.set()

    async def final_loop(self) -> None:
        """Finals in order, each as soon as its utterance stops (beside any partial decoding)."""
        while True:
            while not self.finals:
                if self.ended:
                    return
                self.final_ready = anyio.Event()
                await self.final_ready.wait()
            await self._decode(self.finals[0])
            self.finals.popleft()
            self.space.set()

    async def partial_loop(self) -> None:
        """The latest partial request, one at a time; a request superseded meanwhile is dropped."""
        while True:
            while self.partial is None:
                if self.ended:
                    return
                self.partial_ready = anyio.Event()
                await self.partial_ready.wait()
            job, self.partial = self.partial, None
            await self._decode(job)

    async def _recognize(self, audio: Audio, options: RecognitionOptions, *, final: bool) -> Heard:
        """Recognise a live utterance (ahead of whole-file transcriptions, a final ahead of
        partials), redacted for the caller; a final result counts against the caller's audio quota,
        a partial one does not (its audio is counted with the final).

        Raises:
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """
        service, scheduler = self.service, self.service.scheduler
        recognizer = service.require().recognizer

        def stop_if_cancelled(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()

        def work() -> Transcript:
            return recognizer.transcribe(audio, options, stop_if_cancelled)

        cost = Cost()
        timeout = service.settings.transcribe_timeout_seconds
        priority = Priority.LIVE_FINAL if final else Priority.LIVE_PARTIAL
        transcript = await scheduler.run(
            scheduler.recognition, cost.timed(work), timeout, "transcribe", priority=priority, cost=cost
        )
        if not final:
            return Heard(redacted(transcript, service.policy, self.who), cost.report(audio.duration))
        service.heard(self.who, audio.duration)
        spent = settle(cost, audio.duration, service.metrics, "live final", "recognition")
        return Heard(redacted(transcript, service.policy, self.who), spent)

    async def _decode(self, job: Job) -> None:
        options = RecognitionOptions(
            language=self.params.language,
            word_timestamps=job.final and self.params.word_timestamps,
            beam_size=None if job.final else 1,
            initial_prompt=self.params.prompt,
        )
        heard = await self._recognize(job.audio, options, final=job.final)
        transcript = heard.transcript
        if not job.final:
            if self.still_open(job.utterance):
                await self.emit({"type": "partial", "utterance": job.utterance, "text": transcript.text})
            return
        self.final_count += 1
        event: dict[str, Any] = {
            "type": "final",
            "utterance": job.utterance,
            "text": transcript.text,
            "start": job.start,
            "end": job.end,
            "duration": round(job.audio.duration, 3),
            "language": transcript.language,
            "latency_ms": round((time.perf_counter() - job.stopped_at) * 1000),
            "cost": heard.cost.as_dict(),
            "untrusted_content": True,
        }
        if self.params.word_timestamps:
            event["words"] = [
                {
                    "word": w.text,
                    "start": round(job.start + w.start, 3),
                    "end": round(job.start + w.end, 3),
                    "probability": round(w.probability, 3),
                }
                for w in transcript.words
            ]
        await self.emit(event)
