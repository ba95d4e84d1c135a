"""Decoding of a live stream's utterances: finals in order and ahead of any partial, the latest
partial only, each under the recognition admission and the transcription deadline.

A final is decoded ahead while its utterance pauses (`guess`): the endpointer says, once the silence
has lasted the trailing pad, exactly which audio the stop would carry, so the decoding runs during
the rest of the pause and the final is ready sooner; speech that resumes cancels it. A guess counts
against the caller's audio quota only once it is the final.

A final waits for a recognition slot at most `live_final_wait_seconds`: past that (or past the
deadline) its utterance is answered with an `error` event (`busy`, retryable, or `timeout`) at once,
rather than the client waiting on a queue in silence, and the stream goes on."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.from_thread

from agent_tools.core.admission import Priority
from agent_tools.core.cost import Cost, settle
from agent_tools.core.errors import Busy, error_body
from agent_tools.core.live_jobs import Guess, Job
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.outputs import Heard, redacted
from agent_tools.core.service import SpeechService
from policies import Principal
from speech_backend import Audio, RecognitionOptions, Recognizer, Transcript
from speech_errors import ContractError

MAX_WAITING_UTTERANCES = 4
PARTIAL_MIN_WAIT_SECONDS = 0.25
Emit = Callable[[dict[str, Any]], Awaitable[None]]


class LiveDecoder:
    """The decoding side of one stream: at most a few finals waiting, and one partial."""

    def __init__(
        self,
        service: SpeechService,
        who: Principal,
        params: LiveSettings,
        emit: Emit,
        still_open: Callable[[int], bool],
        request_id: str = "-",
    ) -> None:
        self.service = service
        self.request_id = request_id
        self.who = who
        self.params = params
        self.emit = emit
        self.still_open = still_open  # whether an utterance is still being heard (its partial is news)
        self.finals: deque[Job] = deque()
        self.partial: Job | None = None
        self.guessing: Guess | None = None  # the open utterance's guess, until it stops or resumes
        self.next_guess: Guess | None = None  # one not yet started
        self.final_ready = anyio.Event()
        self.partial_ready = anyio.Event()
        self.guess_ready = anyio.Event()
        self.space = anyio.Event()
        self.ended = False
        self.final_count = 0
        self.failed_count = 0

    @property
    def owes_results(self) -> bool:
        """Whether an utterance has stopped whose final (or error) has not been emitted yet."""
        return bool(self.finals)

    async def add_final(self, job: Job) -> None:
        """Queue an utterance for its final result, waiting while decoding is behind (the stream
        stops reading meanwhile); it supersedes any partial."""
        guess, self.guessing = self.guessing, None
        if guess is not None and guess.started and guess.matches(job.utterance, job.audio):
            job = dataclasses.replace(job, guess=guess)
        else:  # a guess not started yet gains nothing over the final's own decoding
            self.drop_guess(guess)
        while len(self.finals) >= MAX_WAITING_UTTERANCES:
            self.space = anyio.Event()
            await self.space.wait()
        self.finals.append(job)
        self.partial = None
        self.final_ready.set()

    def guess(self, utterance: int, audio: Audio) -> None:
        """Decode `utterance`'s final ahead, on `audio` (what its stop at this pause would carry)."""
        self.drop_guess()
        self.guessing = self.next_guess = Guess(utterance, audio)
        self.partial = None  # the guess says more than a partial would
        self.guess_ready.set()

    def drop_guess(self, guess: Guess | None = None) -> None:
        """The utterance goes on (or is gone): stop its guess (or `guess`)."""
        guess = guess or self.guessing
        if guess is None:
            return
        guess.drop()
        if self.guessing is guess:
            self.guessing = None
        if self.next_guess is guess:
            self.next_guess = None

    def want_partial(self, job: Job) -> None:
        """Ask for a partial result (replacing one not yet started)."""
        self.partial = job
        self.partial_ready.set()

    def end(self) -> None:
        """No more work will come: the loops finish what is queued and return."""
        self.ended = True
        self.final_ready.set()
        self.partial_ready.set()
        self.guess_ready.set()

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
            with contextlib.suppress(Busy):  # no slot soon: no partial this time (a later one comes)
                await self._decode(job)

    async def guess_loop(self) -> None:
        """The latest guess, one at a time; a guess dropped meanwhile stops (or never starts)."""
        while True:
            while self.next_guess is None:
                if self.ended:
                    return
                self.guess_ready = anyio.Event()
                await self.guess_ready.wait()
            guess, self.next_guess = self.next_guess, None
            guess.started = True
            # Only on spare capacity: a slot free now, and not one kept for finals while other
            # streams are open. A guess that waited, or took the kept slot, would hold it when their
            # finals come (an engine step cannot be interrupted, and speech may resume). The only
            # stream open is the one the kept slot is for: its guess is its next final and may take
            # it (its partials hold the other slot most of the time on a slow CPU). No slot, or no
            # time: the final decodes at the stop, and says why if it fails too.
            alone = self.service.scheduler.live_streams <= 1
            priority = Priority.LIVE_FINAL if alone else Priority.LIVE_GUESS
            with guess.scope, contextlib.suppress(ContractError):
                options = self._options(final=True)
                guess.heard = await self._recognize(guess.audio, options, priority, max_wait=0)
            guess.done.set()

    def _options(self, *, final: bool) -> RecognitionOptions:
        return RecognitionOptions(
            language=self.params.language,
            word_timestamps=final and self.params.word_timestamps,
            beam_size=None if final else 1,
            initial_prompt=self.params.prompt,
        )

    async def _recognize(
        self,
        audio: Audio,
        options: RecognitionOptions,
        priority: Priority,
        max_wait: float | None = None,
        continuing: bool = False,
    ) -> tuple[Transcript, Cost]:
        """Recognise a live utterance (ahead of whole-file transcriptions, a final ahead of
        partials), waiting for a slot at most `max_wait` seconds if given (a final: the live final
        wait; a partial: its interval): the transcript as the engine made it, and what it cost. A
        final is `continuing` work of an admitted stream: served while the server drains.

        Raises:
            Busy, DeadlineExceeded: no slot in time, or the deadline passed (work stopped).
        """
        service, scheduler = self.service, self.service.scheduler
        engines = service.require()
        recognizer: Recognizer = engines.recognizer
        admission = scheduler.recognition
        short = engines.short_recognizer
        if short is not None and short.accepts(audio.duration, options):  # its own threads and slots
            recognizer, admission = short, scheduler.short_recognition

        def stop_if_cancelled(done: float, total: float) -> None:
            anyio.from_thread.check_cancelled()

        def work() -> Transcript:
            kind, model = priority.name.lower(), recognizer.model_id
            attributes: dict[str, str | float] = {
                "speech.audio_seconds": audio.duration,
                "speech.priority": kind,
                "speech.model": model,
            }
            with service.tracing.span("recognize", attributes):
                return recognizer.transcribe(audio, options, stop_if_cancelled)

        cost = Cost()
        timeout = service.settings.transcribe_timeout_seconds
        # a partial waits no longer than the next one would: by then it says less
        wait = max_wait
        if wait is None and priority == Priority.LIVE_PARTIAL:
            wait = max(PARTIAL_MIN_WAIT_SECONDS, self.params.partial_interval_ms / 1000)
        elif wait is None:
            wait = service.settings.live_final_wait_seconds
        transcript = await scheduler.run(
            admission,
            cost.timed(work),
            timeout,
            "transcribe",
            priority=priority,
            cost=cost,
            max_wait=wait,
            continuing=continuing,
        )
        return transcript, cost

    async def _heard(self, job: Job) -> Heard:
        """The job's transcript redacted for the caller, with its cost; a final counts against the
        caller's audio quota (a partial's audio is counted with its final)."""
        service = self.service
        found = None
        if job.guess is not None:
            await job.guess.done.wait()
            found = job.guess.heard
        priority = Priority.LIVE_FINAL if job.final else Priority.LIVE_PARTIAL
        options = self._options(final=job.final)
        transcript, cost = found or await self._recognize(job.audio, options, priority, continuing=job.final)
        if not job.final:
            return Heard(redacted(transcript, service.policy, self.who), cost.report(job.audio.duration))
        await service.heard(self.who, job.audio.duration)
        spent = settle(cost, job.audio.duration, service.metrics, "live final", "recognition")
        return Heard(redacted(transcript, service.policy, self.who), spent)

    async def _decode(self, job: Job) -> None:
        try:
            heard = await self._heard(job)
        except ContractError as exc:
            if not job.final:
                raise
            # the turn is owed an answer: say why it has none, and go on with the next
            self.failed_count += 1
            body = error_body(exc, self.request_id)
            await self.emit(
                {"type": "error", "utterance": job.utterance, "start": job.start, "end": job.end, **body}
            )
            return
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
