"""Fixtures for the tool surfaces: a runtime over the real engines, in-memory and HTTP servers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import anyio
import numpy as np
import pytest
import uvicorn

from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.settings import ServiceSettings, Settings
from agent_tools.tools.server import build_server
from agent_tools.web.http_server import uvicorn_config
from speech_backend import Audio, AudioLimits, Recognizer, Synthesizer, resample
from speech_backend.fakes import FAKE_VOICE, FakeRecognizer


@pytest.fixture
def settings(engine_settings) -> Settings:
    return Settings(engines=engine_settings, service=ServiceSettings(deterministic_speech=True))


@pytest.fixture
def runtime(settings: Settings, service: SpeechService) -> Runtime:
    """A runtime over the session's real engines (service state and audio store fresh per test)."""
    return runtime_with(service, settings)


@pytest.fixture
def server(runtime: Runtime):
    return build_server(runtime)


def runtime_with(service: SpeechService, settings: Settings, **service_settings: object) -> Runtime:
    """A runtime of `settings` (its policy file included) whose service settings differ, over the same
    engines as `service`."""
    changed = service.settings.model_copy(update=service_settings)
    return Runtime.build(settings.model_copy(update={"service": changed}), service.require())


@asynccontextmanager
async def serve_http(runtime: Runtime) -> AsyncIterator[str]:
    """The whole app under uvicorn on a pre-bound loopback socket; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(runtime, lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        await eventually(lambda: server.started, within=10)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `condition()` holds (polled: the things waited on have no events to await)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - no event exists for these states
            await anyio.sleep(0.01)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def long_text() -> Iterator[str]:
    yield " ".join(
        f"This is sentence number {i} of a long passage that is read aloud for the listener."
        for i in range(1, 16)
    )


def fake_runtime(
    settings: Settings,
    synthesizer: Synthesizer,
    recognizer: Recognizer | None = None,
    audio_limits: AudioLimits | None = None,
) -> Runtime:
    """A runtime of `settings` (its policy file included) over contract-test engines (no VAD)."""
    engines = Engines(
        synthesizer, recognizer or FakeRecognizer(), FAKE_VOICE.id, audio_limits or AudioLimits()
    )
    return Runtime.build(settings, engines)


UTTERANCES = [
    "The weather today is sunny with a light breeze.",
    "Please book a table for four people at seven.",
    "Turn the volume down a little bit.",
]


@pytest.fixture(scope="module")
def conversation(speak) -> tuple[Audio, list[tuple[float, float]]]:
    """Three spoken utterances with pauses between them, at 16 kHz, and where each one is."""
    rate = 16000
    parts, spans, at = [], [], 0.0
    for text in UTTERANCES:
        voice = resample(speak(text), rate).samples
        parts += [np.zeros(rate, np.float32), voice]
        spans.append((at + 1.0, at + 1.0 + len(voice) / rate))
        at += 1.0 + len(voice) / rate
    parts.append(np.zeros(rate, np.float32))
    return Audio(np.concatenate(parts), rate), spans
