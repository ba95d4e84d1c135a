"""Ray Serve deployments for synthesis and recognition, each replica holding the same engines the
embedded server runs in-process. Replica counts, autoscaling and per-replica resources come from the
Serve config (`deploy/serve.yaml`); the engines' settings arrive as the application's arguments.

Speech streams sentence by sentence (each sentence synthesized in a thread, so a cancelled request
stops after the sentence in progress); recognition stops at the next segment once cancelled.

Each replica hands its engine slots out by priority, as the embedded server does: requests from
every front-end carry their class (`speech_backend.priority`), so a call's first sentence goes
ahead of other calls' later sentences, and live finals ahead of whole-file transcriptions (one
recognition slot is kept for them; other work takes it only once it has waited
`promote_after_seconds`). `slots` and `promote_after_seconds` are application arguments.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio.to_thread
from ray import serve
from ray.serve import Application

from speech_backend import (
    Audio,
    RecognitionOptions,
    SpeechChunk,
    SynthesisOptions,
    Transcript,
    build_recognizer,
    build_synthesizer,
    resolve_device,
)
from speech_backend.allocator import tune_allocator
from speech_backend.config import EngineSettings
from speech_backend.priority import Priority, PrioritySlots

SYNTHESIS_APP = "speech-synthesis"
RECOGNITION_APP = "speech-recognition"
SYNTHESIS_SLOTS = 2  # sentences made at once per replica (narrow sessions side by side)
PROMOTE_AFTER_SECONDS = 5.0  # less urgent work waits at most this long behind more urgent arrivals


class Cancelled(Exception):
    """The request was cancelled: recognition stops at the next segment."""


class SynthesisReplica:
    """Piper voices, loaded once per replica."""

    def __init__(
        self,
        engines: dict[str, Any],
        slots: int = SYNTHESIS_SLOTS,
        promote_after_seconds: float = PROMOTE_AFTER_SECONDS,
    ) -> None:
        tune_allocator()  # a replica's process serves calls that come and go, as a front-end does
        settings = EngineSettings.model_validate(engines)
        self.synthesizer = build_synthesizer(settings, resolve_device(settings.device), "catalog")
        self.synthesizer.load(settings.piper.default_voice)
        self.default_voice = settings.piper.default_voice
        self.slots = PrioritySlots(slots, promote_after_seconds)
        self.sentences = 0  # synthesized by this replica
        self.by_priority: Counter[str] = Counter()  # sentences, by the class they were made in
        self.active = 0  # requests streaming now

    def describe(self) -> dict[str, Any]:
        """What front-ends need to know without a call per request."""
        return {
            "engine": self.synthesizer.engine,
            "voices": self.synthesizer.voices(),
            "default_voice": self.default_voice,
        }

    def load(self, voice_id: str) -> None:
        """Load a voice on this replica."""
        self.synthesizer.load(voice_id)

    def stats(self) -> dict[str, int]:
        """Sentences synthesized (in all, and by class), requests streaming and sentences waiting for
        a slot on this replica (for operators and tests)."""
        waiting = {"active": self.active, "waiting": self.slots.waiting}
        return {"sentences": self.sentences, **waiting, **self.by_priority}

    async def synthesize(
        self,
        text: str,
        voice_id: str,
        options: SynthesisOptions,
        priority: Priority = Priority.FIRST_AUDIO,
    ) -> AsyncGenerator[SpeechChunk, None]:
        """The sentences of `text` as they are made, the first in the request's class (`priority`),
        the rest as a call's later sentences; a cancelled request stops after the current one."""
        chunks: Iterator[SpeechChunk] = await asyncio.to_thread(
            self.synthesizer.synthesize, text, voice_id, options
        )
        self.active += 1
        try:
            while True:
                await self.slots.acquire(priority)
                try:  # the slot is held until the sentence's thread is done, even when cancelled
                    chunk = await anyio.to_thread.run_sync(next, chunks, None)
                finally:
                    self.slots.release()
                if chunk is None:
                    return
                self.sentences += 1
                self.by_priority[priority.name.lower()] += 1
                yield chunk
                priority = max(priority, Priority.LATER_AUDIO)
        finally:
            self.active -= 1


class RecognitionReplica:
    """A Whisper model, loaded once per replica."""

    def __init__(
        self,
        engines: dict[str, Any],
        slots: int | None = None,
        promote_after_seconds: float = PROMOTE_AFTER_SECONDS,
    ) -> None:
        tune_allocator()
        settings = EngineSettings.model_validate(engines)
        self.recognizer = build_recognizer(settings, resolve_device(settings.device), "catalog")
        count = slots or settings.whisper.num_workers  # the model serves this many at once
        self.slots = PrioritySlots(count, promote_after_seconds, reserved=1)  # one kept for finals
        self.by_priority: Counter[str] = Counter()  # recognitions, by class

    def describe(self) -> dict[str, Any]:
        """The model's id and whether it is multilingual."""
        return {
            "model_id": self.recognizer.model_id,
            "multilingual": self.recognizer.multilingual,
            "languages": self.recognizer.languages,
        }

    def stats(self) -> dict[str, int]:
        """Recognitions by class, and those waiting for a slot (for operators and tests)."""
        return {"waiting": self.slots.waiting, **self.by_priority}

    async def transcribe(
        self, audio: Audio, options: RecognitionOptions, priority: Priority = Priority.BATCH
    ) -> Transcript:
        """Recognise `audio` once a slot is free for its class; a cancelled request stops at the
        next segment."""
        stop = threading.Event()

        def check(done: float, total: float) -> None:
            if stop.is_set():
                raise Cancelled

        await self.slots.acquire(priority)
        try:
            self.by_priority[priority.name.lower()] += 1
            return await asyncio.to_thread(self.recognizer.transcribe, audio, options, check)
        except asyncio.CancelledError:
            stop.set()
            raise
        finally:
            self.slots.release()


# Defaults; the Serve config overrides replicas, autoscaling and resources per deployment.
SYNTHESIS = serve.deployment(name="synthesis", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=8)(
    SynthesisReplica
)
RECOGNITION = serve.deployment(name="recognition", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=4)(
    RecognitionReplica
)


def synthesis_app(args: dict[str, Any]) -> Application:
    """The synthesis application (`import_path: speech_cluster.deployments:synthesis_app`); `args`
    holds `engines`, the engines' settings (`speech_backend.config.EngineSettings`), and optionally
    `slots` (sentences made at once per replica, 2) and `promote_after_seconds` (5)."""
    slots = int(args.get("slots") or SYNTHESIS_SLOTS)
    return SYNTHESIS.bind(dict(args.get("engines") or {}), slots, _promote_after(args))


def recognition_app(args: dict[str, Any]) -> Application:
    """The recognition application (`import_path: speech_cluster.deployments:recognition_app`);
    `slots` defaults to the Whisper worker count."""
    slots = int(args["slots"]) if args.get("slots") else None
    return RECOGNITION.bind(dict(args.get("engines") or {}), slots, _promote_after(args))


def _promote_after(args: dict[str, Any]) -> float:
    return float(args.get("promote_after_seconds") or PROMOTE_AFTER_SECONDS)
