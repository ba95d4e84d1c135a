"""Which recognizer serves a live utterance: Moonshine (its own slots) for short English ones that
ask for no word timings and no prompt, Whisper for the rest; both heard right."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from websockets.asyncio.client import connect

from agent_tools.core.runtime import Runtime
from speech_backend import Audio
from tests.agent_tools.conftest import UTTERANCES, serve_http
from tests.agent_tools.web.test_realtime import append, events_until, next_event, pcm24, realtime, session
from tests.agent_tools.web.test_sockets import receive, until_done, ws_url
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


def served(runtime: Runtime, engine: str) -> float:
    """How many recognitions `engine`'s slots have admitted."""
    registry = runtime.service.metrics.registry
    count = registry.get_sample_value("speech_engine_queue_wait_seconds_count", {"engine": engine})
    return count or 0.0


async def stream(base: str, audio: Audio, query: str) -> list[dict[str, object]]:
    pcm = (audio.samples * 32767).astype("<i2").tobytes()
    async with connect(ws_url(base, f"/v1/transcribe/ws?{query}")) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready", ready
        for start in range(0, len(pcm), 3200):  # 100 ms frames
            await ws.send(pcm[start : start + 3200])
        await ws.send(json.dumps({"type": "end"}))
        return await until_done(ws)


def finals(events: list[dict[str, object]]) -> list[dict[str, object]]:
    found = [e for e in events if e["type"] == "final"]
    assert len(found) == len(UTTERANCES), events
    for final, text in zip(found, UTTERANCES, strict=True):
        assert normalized_wer([text], [str(final["text"])]) <= 0.15, final["text"]
    return found


async def test_finals_without_word_timings_are_served_by_moonshine(runtime, conversation):
    audio, _ = conversation
    async with serve_http(runtime) as base:
        events = await stream(base, audio, "word_timestamps=false&partial_interval_ms=500")
    assert all("words" not in f for f in finals(events))
    assert served(runtime, "short_recognition") >= len(UTTERANCES)
    assert served(runtime, "recognition") == 0  # partials too: Whisper was not used


async def test_finals_with_word_timings_or_a_prompt_are_served_by_whisper(runtime, conversation):
    audio, _ = conversation
    async with serve_http(runtime) as base:
        timed = finals(await stream(base, audio, "partial_interval_ms=0"))
        assert all(len(f["words"]) >= 3 for f in timed)  # type: ignore[arg-type]
        assert served(runtime, "short_recognition") == 0
        finals(await stream(base, audio, "word_timestamps=false&partial_interval_ms=0&prompt=Lisbon"))
    assert served(runtime, "short_recognition") == 0
    assert served(runtime, "recognition") >= 2 * len(UTTERANCES)


async def test_realtime_finals_are_served_by_moonshine_and_by_whisper_without_it(
    runtime, settings, engines, conversation
):
    audio, _ = conversation
    without = Runtime.build(settings, replace(engines, short_recognizer=None))
    for server, engine in ((runtime, "short_recognition"), (without, "recognition")):
        async with serve_http(server) as base, realtime(base) as conn:
            await next_event(conn)
            await conn.session.update(session=session({"turn_detection": {"type": "server_vad"}}))
            await next_event(conn)
            await append(conn, pcm24(audio))
            kind = "conversation.item.input_audio_transcription.completed"
            events = await events_until(conn, kind, len(UTTERANCES))
        heard = [e["transcript"] for e in events if e["type"] == kind]
        assert normalized_wer(UTTERANCES, heard) <= 0.15, heard
        assert served(server, engine) >= len(UTTERANCES)
    assert served(without, "short_recognition") == 0
