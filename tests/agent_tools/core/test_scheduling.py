"""Who goes first at the recognition engine, through the service's own calls on the real engines:
a live final ahead of a queued whole-file transcription, and a whole-file transcription that still
completes while interactive work never stops arriving. (First audio ahead of later sentences:
test_service.py.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import pytest

from agent_tools.core.admission import Priority
from agent_tools.core.live import open_live
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.runtime import Runtime
from agent_tools.core.sources import AudioSource
from agent_tools.settings import ServiceSettings, Settings
from policies import Policy
from speech_backend import RecognitionOptions, encode_audio, resample
from tests.agent_tools.conftest import eventually
from tests.agent_tools.core.test_core import pcm_of

pytestmark = pytest.mark.anyio
SENTENCE = "The parcel arrives on Thursday before noon."


def one_recognition_slot(engines, engine_settings, promote_after: float = 60.0, slots: int = 1) -> Runtime:
    service = ServiceSettings(recognition_slots=slots, promote_after_seconds=promote_after)
    return Runtime.build(Settings(engines=engine_settings, service=service), engines, policy=Policy())


async def test_a_live_final_is_decoded_before_a_whole_file_transcription_queued_earlier(
    engines, engine_settings, speak
):
    runtime = one_recognition_slot(engines, engine_settings)
    service, recognition = runtime.service, runtime.scheduler.recognition
    audio = speak(SENTENCE)
    wav = encode_audio(audio, "wav")
    pcm = pcm_of(service, audio)
    order: list[str] = []

    async def batch() -> None:
        await service.transcribe(AudioSource(data=wav))
        order.append("batch")

    async def live() -> None:
        frames = iter([pcm[i : i + 3200] for i in range(0, len(pcm), 3200)])

        async def receive() -> bytes | None:
            return next(frames, None)

        async def emit(event: dict[str, Any]) -> None:
            if event["type"] == "final":
                order.append("live final")

        await (await open_live(service, LiveSettings(partial_interval_ms=0), None, emit)).run(receive)

    async with anyio.create_task_group() as tg, recognition.slot(Priority.BATCH):  # holds the only slot
        tg.start_soon(batch)
        await eventually(lambda: recognition.waiting == 1, within=30)
        tg.start_soon(live)
        await eventually(lambda: recognition.waiting == 2, within=60)  # the final is queued too
    assert order == ["live final", "batch"]


async def test_a_whole_file_transcription_completes_under_a_steady_stream_of_live_work(
    engines, engine_settings, speak
):
    runtime = one_recognition_slot(engines, engine_settings, promote_after=0.5)
    service, scheduler = runtime.service, runtime.scheduler
    clip = resample(speak("Yes."), 16000)
    recognizer = service.require().recognizer
    finished = anyio.Event()
    live_decodes = 0

    async def live_worker() -> None:  # one of two: a live final always waits when the slot frees
        nonlocal live_decodes
        while not finished.is_set():
            await scheduler.run(
                scheduler.recognition,
                lambda: recognizer.transcribe(clip, RecognitionOptions(beam_size=1)),
                60,
                "transcribe",
                priority=Priority.LIVE_FINAL,
            )
            live_decodes += 1
            if live_decodes > 500:
                raise AssertionError("the whole-file transcription starved")

    async def batch() -> None:
        await service.transcribe(AudioSource(data=encode_audio(speak(SENTENCE), "wav")))
        finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(live_worker)
        tg.start_soon(live_worker)
        await eventually(lambda: live_decodes >= 2, within=60)  # the live stream is flowing
        tg.start_soon(batch)
    assert finished.is_set() and live_decodes >= 2


async def test_while_a_live_stream_is_open_a_slot_is_kept_for_its_finals(engines, engine_settings, speak):
    runtime = one_recognition_slot(engines, engine_settings, slots=2)
    service, recognition = runtime.service, runtime.scheduler.recognition
    audio = speak(SENTENCE)
    wav = encode_audio(audio, "wav")
    pcm = pcm_of(service, audio)
    frames = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    speak_now = anyio.Event()
    order: list[str] = []

    async def receive() -> bytes | None:
        await speak_now.wait()
        return frames.pop(0) if frames else None

    async def emit(event: dict[str, Any]) -> None:
        if event["type"] == "final":
            order.append("live final")

    async def batch() -> None:
        await service.transcribe(AudioSource(data=wav))
        order.append("batch")

    async with anyio.create_task_group() as tg, recognition.slot(Priority.BATCH):  # one of two slots busy
        live = await open_live(service, LiveSettings(partial_interval_ms=0), None, emit)
        tg.start_soon(live.run, receive)
        await eventually(lambda: runtime.scheduler.live_streams == 1, within=10)
        tg.start_soon(batch)
        await eventually(lambda: recognition.waiting == 1, within=30)  # a slot is free, but kept
        speak_now.set()
        await eventually(lambda: order == ["live final"], within=120)  # beside the running batch
    await eventually(lambda: order == ["live final", "batch"], within=120)
    assert runtime.scheduler.live_streams == 0 and recognition.in_use == 0


@pytest.mark.parametrize("short", [False, True], ids=["whisper-only", "with-moonshine"])
async def test_partials_without_a_slot_are_skipped_and_the_stream_goes_on(
    engines, engine_settings, speak, short
):
    service_settings = ServiceSettings(recognition_slots=2, max_queue_wait_seconds=2)
    engines = engines if short else dataclasses.replace(engines, short_recognizer=None)
    runtime = Runtime.build(
        Settings(engines=engine_settings, service=service_settings), engines, policy=Policy()
    )
    service, recognition = runtime.service, runtime.scheduler.recognition
    pcm = pcm_of(service, speak(SENTENCE))
    frames = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    events: list[dict[str, Any]] = []

    async def receive() -> bytes | None:
        await anyio.sleep(0.1)  # in real time: partials are due while the speech goes on
        return frames.pop(0) if frames else None

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    # A whole-file transcription holds the only slot partials may use (the other is kept for finals)
    # for longer than a slot is ever waited for.
    async with recognition.slot(Priority.BATCH):
        await (await open_live(service, LiveSettings(partial_interval_ms=300), None, emit)).run(receive)
    kinds = [e["type"] for e in events]
    assert kinds.count("final") == 1 and kinds[-1] == "done"
    # Whisper's partials wait for the held slot and are skipped; Moonshine's have slots of their own
    assert ("partial" in kinds) == short, kinds
