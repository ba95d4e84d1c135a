"""A pool replica serves by priority, as the embedded server does: a call's first sentence ahead of
other calls' later sentences, a live final ahead of a whole-file transcription. The replica classes
run here in-process over the real engines (Ray Serve adds routing, not scheduling); that the
front-ends tell the replicas each request's class is tested through the cluster (test_engine_pool)."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from speech_backend import Audio, RecognitionOptions, SynthesisOptions, resample
from speech_backend.config import EngineSettings
from speech_backend.priority import Priority
from speech_cluster.deployments import RecognitionReplica, SynthesisReplica
from tests.conftest import DEFAULT_VOICE

pytestmark = pytest.mark.anyio
LONG = " ".join(f"Sentence number {n} of an answer that goes on." for n in range(1, 31))
NEVER = 3600.0  # no promotion within a test: the order is the priorities' alone


async def test_a_calls_first_sentence_goes_ahead_of_other_calls_later_sentences(
    engine_settings: EngineSettings,
) -> None:
    replica = SynthesisReplica(engine_settings.model_dump(mode="json"), slots=1, promote_after_seconds=NEVER)
    options = SynthesisOptions(deterministic=True)
    arrivals: list[str] = []
    speaking = {name: anyio.Event() for name in "abc"}

    async def listen(name: str) -> None:
        async with aclosing(replica.synthesize(LONG, DEFAULT_VOICE, options, Priority.FIRST_AUDIO)) as chunks:
            async for _ in chunks:
                arrivals.append(name)
                if name == "d":
                    return  # its first sentence is all this test waits for
                speaking[name].set()

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(listen, name)
        for event in speaking.values():
            await event.wait()
        arrived = len(arrivals)  # three calls are speaking; their later sentences queue for the slot
        await listen("d")
        tg.cancel_scope.cancel()
    before_d = arrivals[arrived : arrivals.index("d", arrived)]
    # d waited only for the sentence running when it came, not behind the two others queued
    assert len(before_d) <= 1, arrivals
    stats = replica.stats()
    assert stats["first_audio"] == 4 and stats["later_audio"] == len(arrivals) - 4


async def test_a_live_final_goes_ahead_of_a_queued_whole_file_transcription(
    engine_settings: EngineSettings, speak
) -> None:
    replica = RecognitionReplica(
        engine_settings.model_dump(mode="json"), slots=1, promote_after_seconds=NEVER
    )
    long_clip: Audio = resample(speak(" ".join(LONG.split(". ")[:4])), 16000)
    final_clip: Audio = resample(speak("Please call me back tomorrow."), 16000)
    finished: list[str] = []

    async def recognise(name: str, audio: Audio, priority: Priority) -> None:
        transcript = await replica.transcribe(audio, RecognitionOptions(), priority)
        assert transcript.text.strip()
        finished.append(name)

    async def until(check) -> None:  # the replica's queue changes with no event to await
        while not check():  # noqa: ASYNC110
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(recognise, "first batch", long_clip, Priority.BATCH)
        await until(lambda: replica.stats().get("batch") == 1)  # it holds the slot
        tg.start_soon(recognise, "second batch", long_clip, Priority.BATCH)
        await until(lambda: replica.stats()["waiting"] == 1)
        tg.start_soon(recognise, "final", final_clip, Priority.LIVE_FINAL)
        await until(lambda: replica.stats()["waiting"] == 2)
    assert finished == ["first batch", "final", "second batch"]
