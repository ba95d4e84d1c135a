"""A live final decoded while its utterance pauses: once the silence has lasted the trailing pad, the
audio a stop would carry is known, so its decoding starts then; the stop uses it (no second decoding)
and speech that comes back within the pause makes the utterance go on, heard whole in its final."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import numpy as np
import pytest

from agent_tools.core.admission import Priority
from agent_tools.core.engines import Engines
from agent_tools.core.live import open_live
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.settings import Settings
from policies import Policy
from speech_backend import Audio, RecognitionOptions, Recognizer, Transcript, resample
from speech_backend.protocols import ProgressHook
from tests.agent_tools.conftest import eventually
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
RATE = 16000


class Counted:
    """The real recognizer, noting the length of each audio it finished recognising (a spy)."""

    def __init__(self, inner: Recognizer) -> None:
        self.inner = inner
        self.finished: list[float] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def multilingual(self) -> bool:
        return self.inner.multilingual

    @property
    def languages(self) -> tuple[str, ...]:
        return self.inner.languages

    def check_options(self, options: RecognitionOptions) -> None:
        self.inner.check_options(options)

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        transcript = self.inner.transcribe(audio, options, progress)
        self.finished.append(audio.duration)
        return transcript


def counted_service(engines: Engines, engine_settings, recognizer: Counted) -> SpeechService:
    runtime = Runtime.build(
        Settings(engines=engine_settings),
        dataclasses.replace(engines, recognizer=recognizer),
        policy=Policy(),
    )
    return runtime.service


def spoken(speak, text: str) -> np.ndarray:
    """`text` at 16 kHz without the voice's leading and trailing quiet."""
    samples = resample(speak(text), RATE).samples
    voiced = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[voiced[0] : voiced[-1] + 1]


def pcm(*parts: np.ndarray) -> bytes:
    return (np.concatenate(parts) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


async def run_live(service: SpeechService, *phases: bytes, between=None) -> list[dict[str, Any]]:
    """Feed each phase in 100 ms frames, awaiting `between()` after all but the last; the events."""
    events: list[dict[str, Any]] = []
    frames = [[p[i : i + 3200] for i in range(0, len(p), 3200)] for p in phases]

    async def receive() -> bytes | None:
        while frames and not frames[0]:
            frames.pop(0)
            if frames and between is not None:
                await between()
        return frames[0].pop(0) if frames else None

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    await (await open_live(service, LiveSettings(partial_interval_ms=0), None, emit)).run(receive)
    return events


async def test_a_final_is_decoded_during_the_pause_and_not_again_at_the_stop(engines, engine_settings, speak):
    text = "The parcel arrives on Thursday before noon."
    recognizer = Counted(engines.recognizer)
    service = counted_service(engines, engine_settings, recognizer)
    # speech, then a pause longer than the 300 ms pad and shorter than the 600 ms that ends it
    paused = pcm(silence(1.0), spoken(speak, text), silence(0.4))

    async def decoded_before_the_stop() -> None:
        await eventually(lambda: len(recognizer.finished) == 1, within=60)

    events = await run_live(service, paused, pcm(silence(1.0)), between=decoded_before_the_stop)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and normalized_wer([text], [str(finals[0]["text"])]) <= 0.2
    assert recognizer.finished == [pytest.approx(finals[0]["duration"], abs=0.001)]  # decoded once
    assert finals[0]["cost"]["engine_ms"] > 0 and service.scheduler.in_flight == 0


async def test_speech_back_within_the_pause_is_heard_whole_in_one_final(engines, engine_settings, speak):
    first, second = "Please book a table", "for four people tonight."
    recognizer = Counted(engines.recognizer)
    service = counted_service(engines, engine_settings, recognizer)
    hesitant = pcm(silence(1.0), spoken(speak, first), silence(0.45), spoken(speak, second), silence(1.0))
    events = await run_live(service, hesitant)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and normalized_wer([f"{first} {second}"], [str(finals[0]["text"])]) <= 0.2
    assert recognizer.finished[-1] == pytest.approx(finals[0]["duration"], abs=0.001)
    assert [e["type"] for e in events].count("speech_stopped") == 1


async def test_the_only_stream_open_guesses_on_the_slot_kept_for_finals(engines, engine_settings, speak):
    text = "The parcel arrives on Thursday before noon."
    recognizer = Counted(engines.recognizer)
    service = counted_service(engines, engine_settings, recognizer)
    recognition = service.scheduler.recognition
    assert recognition.slots == 2 and service.scheduler.live_reserved_slots == 1
    paused = pcm(silence(1.0), spoken(speak, text), silence(0.4))

    async def decoded_before_the_stop() -> None:
        await eventually(lambda: len(recognizer.finished) == 1, within=60)

    # the slot not kept for finals is busy (a partial of this stream, here a whole-file transcription)
    async with recognition.slot(Priority.BATCH):
        events = await run_live(service, paused, pcm(silence(1.0)), between=decoded_before_the_stop)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and normalized_wer([text], [str(finals[0]["text"])]) <= 0.2
    assert recognizer.finished == [pytest.approx(finals[0]["duration"], abs=0.001)]  # decoded once


async def test_beside_another_open_stream_a_guess_leaves_the_kept_slot_to_its_finals(
    engines, engine_settings, speak
):
    text = "The parcel arrives on Thursday before noon."
    recognizer = Counted(engines.recognizer)
    service = counted_service(engines, engine_settings, recognizer)
    recognition = service.scheduler.recognition
    paused = pcm(silence(1.0), spoken(speak, text), silence(0.4))

    async def not_guessed() -> None:
        await anyio.sleep(1.5)  # a guess would have started at once
        assert recognizer.finished == []

    with service.scheduler.live_stream(
        lambda: None
    ):  # another stream is open: the kept slot is for its finals
        async with recognition.slot(Priority.BATCH):
            events = await run_live(service, paused, pcm(silence(1.0)), between=not_guessed)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and normalized_wer([text], [str(finals[0]["text"])]) <= 0.2
    assert recognizer.finished == [pytest.approx(finals[0]["duration"], abs=0.001)]  # at the stop
