"""Shared fixtures: the real engines on the bundled models (loaded once per session) and audio makers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.settings import ServiceSettings, Settings
from policies import Policy
from speech_backend import (
    Audio,
    Device,
    EngineSettings,
    Recognizer,
    SynthesisOptions,
    Synthesizer,
    build_recognizer,
    build_synthesizer,
    resolve_device,
)
from speech_backend.moonshine.recognizer import MoonshineRecognizer
from speech_backend.voice_activity.denoise import DenoiserModel
from speech_backend.voice_activity.denoise import model_file as denoiser_file
from speech_backend.voice_activity.turn_model import TurnModel, model_file
from speech_backend.voice_activity.vad import VadSession

DEFAULT_VOICE = "en_US-joe-medium"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model cache: the Makefile's when set (so CI reuses optimised graphs), else a temporary one."""
    configured = os.environ.get("SPEECH_TOOLS_ENGINES__CACHE_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def engine_settings(cache_dir: Path) -> EngineSettings:
    return EngineSettings(device="cpu", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def cpu() -> Device:
    return resolve_device("cpu")


@pytest.fixture(scope="session")
def synthesizer(engine_settings: EngineSettings, cpu: Device) -> Synthesizer:
    """Piper with the default voice loaded, as a server has it once ready (timed tests and evals
    must not pay the voice's first load)."""
    built = build_synthesizer(engine_settings, cpu)
    built.load(DEFAULT_VOICE)
    return built


@pytest.fixture(scope="session")
def recognizer(engine_settings: EngineSettings, cpu: Device) -> Recognizer:
    return build_recognizer(engine_settings, cpu)


@pytest.fixture(scope="session")
def engines(synthesizer: Synthesizer, recognizer: Recognizer, engine_settings: EngineSettings) -> Engines:
    """The real engines, loaded once: Piper, Whisper, the live-transcription VAD, Smart Turn,
    DeepFilterNet and Moonshine (short live utterances)."""
    path, denoiser = model_file(engine_settings.cache_dir), denoiser_file(engine_settings.cache_dir)
    fetched = MoonshineRecognizer.fetched(engine_settings.cache_dir)
    assert path is not None and denoiser is not None and fetched, "fetched at set-up: run `make live-models`"
    return Engines(
        synthesizer,
        recognizer,
        DEFAULT_VOICE,
        engine_settings.audio,
        VadSession(),
        turn_model=TurnModel(path),
        denoiser=DenoiserModel(denoiser),
        short_recognizer=MoonshineRecognizer(engine_settings.cache_dir),
    )


@pytest.fixture(scope="session")
def catalog_engines(engine_settings: EngineSettings, engines: Engines, cpu: Device) -> Engines:
    """The engines a server loads: every installed synthesizer behind one catalogue (Piper's and
    Kokoro's voices), and recognition that routes a language hint to the multilingual model (the
    session's English model and VAD reused)."""
    from dataclasses import replace

    from speech_backend.whisper.by_language import LanguageRecognizers

    base = engine_settings.model_copy(
        update={"whisper": engine_settings.whisper.model_copy(update={"model": "base"})}
    )
    return replace(
        engines,
        synthesizer=build_synthesizer(engine_settings, cpu, "catalog"),
        recognizer=LanguageRecognizers(engines.recognizer, lambda: build_recognizer(base, cpu)),
    )


@pytest.fixture
def service(engines: Engines, engine_settings: EngineSettings) -> SpeechService:
    """The service over the real engines, as the local principal (its state fresh per test)."""
    # Deterministic speech: round-trip word error rates then do not depend on sampling noise.
    settings = Settings(engines=engine_settings, service=ServiceSettings(deterministic_speech=True))
    return Runtime.build(settings, engines, policy=Policy()).service


@pytest.fixture(scope="session")
def speak(synthesizer: Synthesizer) -> Iterator[object]:
    """A function text -> Audio using the real default voice, deterministic."""

    def run(text: str, speed: float = 1.0) -> Audio:
        chunks = list(
            synthesizer.synthesize(text, DEFAULT_VOICE, SynthesisOptions(speed, deterministic=True))
        )
        return Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)

    yield run


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5) -> Audio:
    """A sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    return Audio((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
