"""Ray Serve deployments for synthesis and recognition, each replica holding the same engines the
embedded server runs in-process. Replica counts, autoscaling and per-replica resources come from the
Serve config (`deploy/serve.yaml`); the engines' settings arrive as the application's arguments.

Speech streams sentence by sentence (each sentence synthesized in a thread, so a cancelled request
stops after the sentence in progress); recognition stops at the next segment once cancelled.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

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
from speech_backend.config import EngineSettings

SYNTHESIS_APP = "speech-synthesis"
RECOGNITION_APP = "speech-recognition"


class Cancelled(Exception):
    """The request was cancelled: recognition stops at the next segment."""


class SynthesisReplica:
    """Piper voices, loaded once per replica."""

    def __init__(self, engines: dict[str, Any]) -> None:
        settings = EngineSettings.model_validate(engines)
        self.synthesizer = build_synthesizer(settings, resolve_device(settings.device))
        self.synthesizer.load(settings.piper.default_voice)
        self.default_voice = settings.piper.default_voice
        self.sentences = 0  # synthesized by this replica
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
        """Sentences synthesized and requests streaming on this replica (for operators and tests)."""
        return {"sentences": self.sentences, "active": self.active}

    async def synthesize(
        self, text: str, voice_id: str, options: SynthesisOptions
    ) -> AsyncIterator[SpeechChunk]:
        """The sentences of `text` as they are made; a cancelled request stops after the current one."""
        chunks: Iterator[SpeechChunk] = await asyncio.to_thread(
            self.synthesizer.synthesize, text, voice_id, options
        )
        self.active += 1
        try:
            while True:
                chunk = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    return
                self.sentences += 1
                yield chunk
        finally:
            self.active -= 1


class RecognitionReplica:
    """A Whisper model, loaded once per replica."""

    def __init__(self, engines: dict[str, Any]) -> None:
        settings = EngineSettings.model_validate(engines)
        self.recognizer = build_recognizer(settings, resolve_device(settings.device))

    def describe(self) -> dict[str, Any]:
        """The model's id and whether it is multilingual."""
        return {
            "model_id": self.recognizer.model_id,
            "multilingual": self.recognizer.multilingual,
            "languages": self.recognizer.languages,
        }

    async def transcribe(self, audio: Audio, options: RecognitionOptions) -> Transcript:
        """Recognise `audio`; a cancelled request stops at the next segment."""
        stop = threading.Event()

        def check(done: float, total: float) -> None:
            if stop.is_set():
                raise Cancelled

        try:
            return await asyncio.to_thread(self.recognizer.transcribe, audio, options, check)
        except asyncio.CancelledError:
            stop.set()
            raise


# Defaults; the Serve config overrides replicas, autoscaling and resources per deployment.
SYNTHESIS = serve.deployment(name="synthesis", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=8)(
    SynthesisReplica
)
RECOGNITION = serve.deployment(name="recognition", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=4)(
    RecognitionReplica
)


def synthesis_app(args: dict[str, Any]) -> Application:
    """The synthesis application (`import_path: speech_cluster.deployments:synthesis_app`); `args`
    holds `engines`, the engines' settings (`speech_backend.config.EngineSettings`)."""
    return SYNTHESIS.bind(dict(args.get("engines") or {}))


def recognition_app(args: dict[str, Any]) -> Application:
    """The recognition application (`import_path: speech_cluster.deployments:recognition_app`)."""
    return RECOGNITION.bind(dict(args.get("engines") or {}))
