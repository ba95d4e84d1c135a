"""The engines one process serves with, and whether they have loaded.

Loading is blocking and slow (models from disk onto a device), so a server starts live but not
ready, loads in the background, and answers `backend_unavailable` until every model it serves with
— the voice, the recognizer and the live-transcription VAD — is in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from speech_backend import (
    Audio,
    AudioLimits,
    BackendUnavailable,
    EngineSettings,
    ProgressHook,
    RecognitionOptions,
    Recognizer,
    Synthesizer,
    Transcript,
    Voice,
    VoiceNotFound,
    build_recognizer,
    build_synthesizer,
    resolve_device,
)
from speech_backend.lexicon import Lexicon
from speech_backend.moonshine.recognizer import MoonshineRecognizer
from speech_backend.voice_activity.denoise import DenoiserModel
from speech_backend.voice_activity.denoise import model_file as denoiser_file
from speech_backend.voice_activity.turn_judge import TurnJudge
from speech_backend.voice_activity.turn_model import TurnModel, model_file
from speech_backend.voice_activity.vad import VadSession

logger = logging.getLogger(__name__)
M = TypeVar("M")


class NotLoadedRecognizer:
    """Stands in when this process was started without recognition."""

    model_id = "none"
    multilingual = False
    languages = ("en",)

    def check_options(self, options: RecognitionOptions) -> None:
        """Nothing to check: every call is refused."""

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Always refuses."""
        raise BackendUnavailable("recognition is not loaded in this process; start it with transcription on")


@dataclass(frozen=True)
class Engines:
    """Loaded engines: synthesis, recognition and voice activity (None: live transcription is off)."""

    synthesizer: Synthesizer
    recognizer: Recognizer
    default_voice: str
    audio_limits: AudioLimits
    vad: VadSession | None = None
    # engines elsewhere (a pool): whether they can serve right now, for readiness
    serving: Callable[[], bool] | None = None
    lexicon: Lexicon | None = None  # how the synthesizers say the words it lists (reloaded on SIGHUP)
    turn_model: TurnModel | None = None  # semantic end of turn (None: set-up did not fetch it)
    denoiser: DenoiserModel | None = None  # live noise_reduction (None: set-up did not fetch it)
    # short live utterances without word timings (None: Whisper serves them too)
    short_recognizer: MoonshineRecognizer | None = None

    def voice_id(self, voice: str | None) -> str:
        """The voice a call speaks with: the one it names, else the default."""
        return voice or self.default_voice

    def voice(self, voice_id: str) -> Voice:
        """The catalogue's entry of `voice_id`: its engine, its sample rate, ...

        Raises:
            VoiceNotFound: no such voice.
        """
        found = next((v for v in self.synthesizer.voices() if v.id == voice_id), None)
        if found is None:
            raise VoiceNotFound(
                f"no voice with id {voice_id!r}; list_voices (GET /v1/audio/voices) lists them"
            )
        return found

    @classmethod
    def load(cls, settings: EngineSettings, *, speak: bool = True, transcribe: bool = True) -> Engines:
        """Resolve the device and load the engines asked for (blocking: call at start-up). An engine not
        asked for answers `backend_unavailable`.

        Raises:
            ModelNotFound, VoiceNotFound: a configured model or voice is missing or broken.
        """
        device = resolve_device(settings.device)
        logger.info(
            "device resolved", extra={"device": device.kind, "providers": list(device.onnx_providers)}
        )
        lexicon = Lexicon(settings.lexicon_file)
        synthesizer = build_synthesizer(settings, device, "catalog", lexicon)
        if speak:
            synthesizer.load(settings.piper.default_voice)
        recognizer = build_recognizer(settings, device, "catalog") if transcribe else NotLoadedRecognizer()
        engines = cls(synthesizer, recognizer, settings.piper.default_voice, settings.audio, lexicon=lexicon)
        return engines.with_live_models(settings) if transcribe else engines

    def with_live_models(self, settings: EngineSettings) -> Engines:
        """These engines with live transcription's models, which run in this process wherever the
        engines are (they judge every 32 ms frame or each pause: too small a step for a network
        hop): the VAD, and the turn model, noise suppressor and short-utterance recognizer where
        set-up fetched them."""
        return replace(
            self,
            vad=VadSession(),
            turn_model=_turn_model(settings),
            denoiser=_denoiser(settings),
            short_recognizer=_short_recognizer(settings),
        )

    async def is_serving(self) -> bool:
        """Whether engines elsewhere (a pool) can serve right now (asked off the event loop); engines
        in this process always can."""
        serving = self.serving
        return serving is None or await anyio.to_thread.run_sync(serving)

    def require_vad(self) -> VadSession:
        """The VAD model of live transcription.

        Raises:
            BackendUnavailable: this process was started without recognition.
        """
        if self.vad is None:
            raise BackendUnavailable("live transcription is not loaded in this process")
        return self.vad

    def require_turn_model(self) -> TurnModel:
        """The turn model of semantic end of turn.

        Raises:
            BackendUnavailable: set-up did not fetch it, or this process does not transcribe.
        """
        return _live_model(self.turn_model if self.vad else None, "semantic end of turn", "use server VAD")

    def turn_judge(self, language: str | None) -> TurnJudge:
        """Semantic end of turn's judge for a stream in `language`: Smart Turn's sound, with the words
        heard by the short-utterance recognizer where it serves the language (English).

        Raises:
            BackendUnavailable: set-up did not fetch Smart Turn, or this process does not transcribe.
        """
        model = self.require_turn_model()
        short = self.short_recognizer
        if short is None or language not in (None, *short.languages):
            return TurnJudge(model.completion, None)
        return TurnJudge(model.completion, short.last_words)

    def require_denoiser(self) -> DenoiserModel:
        """The noise suppressor of live `noise_reduction`.

        Raises:
            BackendUnavailable: set-up did not fetch it, or this process does not transcribe.
        """
        return _live_model(self.denoiser if self.vad else None, "noise_reduction", "send it unset")


def _live_model(model: M | None, what: str, instead: str) -> M:
    if model is None:
        raise BackendUnavailable(
            f"{what} is not available here: its model was not fetched at set-up (`make` does it); {instead}"
        )
    return model


def _denoiser(settings: EngineSettings) -> DenoiserModel | None:
    """DeepFilterNet, where set-up put it (loaded on a stream's first use)."""
    return _fetched(denoiser_file(settings.cache_dir), DenoiserModel, "noise_reduction is off: DeepFilterNet")


def _turn_model(settings: EngineSettings) -> TurnModel | None:
    """Smart Turn, where set-up put it (it judges at each pause: it runs here, beside the VAD);
    checked and loaded now: a wrong file stops the start, as for every model."""
    model = _fetched(model_file(settings.cache_dir), TurnModel, "semantic end of turn is off: Smart Turn")
    if model is not None:
        model.load()
    return model


def _short_recognizer(settings: EngineSettings) -> MoonshineRecognizer | None:
    """Moonshine for short live utterances, where set-up put it and the settings want it (it runs
    here, beside the VAD, also in front of a pool: tens of milliseconds, no network hop); loaded now."""
    if settings.live_recognizer != "moonshine":
        return None
    if not MoonshineRecognizer.fetched(settings.cache_dir):
        logger.warning("live finals use Whisper: Moonshine was not fetched at set-up")
        return None
    recognizer = MoonshineRecognizer(settings.cache_dir)
    recognizer.load()
    return recognizer


def _fetched(path: Path | None, make: Callable[[Path], M], what: str) -> M | None:
    if path is None:
        logger.warning("%s was not fetched at set-up", what)
        return None
    return make(path)


class EngineState:
    """The engines of a process: loading until `load` returns, then ready, or failed with its reason."""

    def __init__(self, engines: Engines | None = None) -> None:
        self._engines = engines
        self.error: str | None = None

    def load(self, build: Callable[[], Engines]) -> None:
        """Load the engines with `build` (blocking); on failure the server stays live but not ready."""
        try:
            engines = build()
        except Exception as exc:  # any failure here must leave a live server that says why it is not ready
            self.error = getattr(exc, "code", "internal")
            logger.error("models failed to load", exc_info=exc)
            return
        self._engines = engines
        logger.info("models loaded; ready")

    @property
    def loaded(self) -> Engines | None:
        """The engines, once loaded."""
        return self._engines

    def require(self) -> Engines:
        """The engines, or `backend_unavailable` while they load or after they failed."""
        if self._engines is None:
            why = (
                "failed to load; see the server log"
                if self.error
                else "still loading; retry in a few seconds"
            )
            raise BackendUnavailable(f"the speech models are {why}")
        return self._engines
