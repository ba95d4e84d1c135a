"""Hostile and faulty inputs over the WebSockets (`/v1/speak/ws`, `/v1/transcribe/ws`): bounded
utterances, typed failures inside a socket's task group, the caps over a whole utterance."""

from __future__ import annotations

import contextlib
import json

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_tools.web.speak_socket import MAX_OPEN_UTTERANCES
from tests.agent_tools.conftest import runtime_with, serve_http
from tests.agent_tools.failures import (
    MEGABYTE,
    PHRASE,
    assert_still_serving,
    phrase_audio,
    rss_bytes,
)
from tests.agent_tools.web.test_sockets import receive, until_done, ws_url
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
__all__ = ["phrase_audio"]  # the fixture, shared


# 2. One WebSocket client may not hold unbounded utterances, tasks or memory.


async def test_a_flood_of_utterances_on_one_socket_is_closed_busy_with_memory_bounded(runtime):
    async with serve_http(runtime) as base:
        before = rss_bytes()
        async with connect(ws_url(base, "/v1/speak/ws")) as ws:
            await receive(ws)
            refused: dict[str, object] = {}
            done = 0
            with pytest.raises(ConnectionClosed), anyio.fail_after(60):
                for _ in range(20_000):
                    await ws.send(json.dumps({"type": "text", "text": "Hello there. "}))
                    await ws.send(json.dumps({"type": "end"}))
                while True:
                    event = json.loads(await ws.recv())
                    done += event["type"] == "done"
                    if event["type"] == "error":
                        refused = event
        assert ws.close_code == 4503 and refused["code"] == "busy"
        assert done <= MAX_OPEN_UTTERANCES  # what was open was ended; nothing past the cap was queued
        assert rss_bytes() - before < 100 * MEGABYTE
        await assert_still_serving(base)


async def test_many_small_messages_in_one_utterance_stay_within_the_text_cap(service, settings):
    runtime = runtime_with(service, settings, max_text_chars=2000)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        for _ in range(5000):
            await ws.send(json.dumps({"type": "flush"}))  # nothing open: nothing to do, nothing kept
        for _ in range(2001):
            await ws.send(json.dumps({"type": "text", "text": "a"}))
        events = await until_done(ws)
        assert [e["type"] for e in events] == ["error", "done"] and events[0]["code"] == "text_too_long"
        await assert_still_serving(base)


# 5. Failures inside a socket's task group keep their codes.


async def refused_while_streaming(ws, audio_pcm: bytes) -> tuple[str, int | None]:
    """Stream `audio_pcm` (100 ms frames) and `end`; the error code the server sent, and its close code."""
    with contextlib.suppress(ConnectionClosed):  # the server may close before the last frame
        for start in range(0, len(audio_pcm), 3200):
            await ws.send(audio_pcm[start : start + 3200])
        await ws.send(json.dumps({"type": "end"}))
    while (event := await receive(ws))["type"] != "error":
        pass
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return event["code"], ws.close_code


@pytest.fixture(scope="module")
def phrase_pcm(phrase_audio) -> bytes:
    import numpy as np

    from speech_backend import resample

    silence = np.zeros(16000, dtype=np.float32)
    samples = np.concatenate([silence, resample(phrase_audio, 16000).samples, silence])
    return (samples * 32767).astype("<i2").tobytes()


async def test_a_live_final_past_its_deadline_is_a_timeout_for_its_utterance_and_the_stream_goes_on(
    service, settings, phrase_pcm
):
    runtime = runtime_with(service, settings, transcribe_timeout_seconds=0.01)
    async with serve_http(runtime) as base:
        async with connect(ws_url(base, "/v1/transcribe/ws?partial_interval_ms=0")) as ws:
            await receive(ws)
            for start in range(0, len(phrase_pcm), 3200):
                await ws.send(phrase_pcm[start : start + 3200])
            await ws.send(json.dumps({"type": "end"}))
            events = await until_done(ws)
        service = runtime.service
        service.settings = service.settings.model_copy(update={"transcribe_timeout_seconds": 300.0})
        await assert_still_serving(base)
    failed = [e for e in events if e["type"] == "error"]
    assert [(e["code"], e["utterance"]) for e in failed] == [("timeout", 1)]
    assert events[-1]["type"] == "done" and (events[-1]["utterances"], events[-1]["failed"]) == (0, 1)


async def test_a_live_transcription_during_shutdown_closes_with_busy(runtime, phrase_pcm):
    url = "/v1/transcribe/ws?partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        await receive(ws)
        runtime.scheduler.shutdown()
        assert await refused_while_streaming(ws, phrase_pcm) == ("busy", 4503)


async def test_a_live_stream_in_a_shutdown_gets_the_final_of_the_turn_it_ended_then_busy(runtime, phrase_pcm):
    from agent_tools.core.admission import Priority

    recognition = runtime.scheduler.recognition
    url = "/v1/transcribe/ws?partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        await receive(ws)
        async with recognition.slot(Priority.LIVE_FINAL), recognition.slot(Priority.LIVE_FINAL):
            for start in range(0, len(phrase_pcm), 3200):  # the turn ends in the second of silence after it
                await ws.send(phrase_pcm[start : start + 3200])
            while (await receive(ws))["type"] != "speech_stopped":
                pass
            runtime.scheduler.shutdown()  # while the turn's final waits for a slot
        events = []
        with pytest.raises(ConnectionClosed):
            while True:
                events.append(await receive(ws))
    assert [e["type"] for e in events] == ["final", "error"]
    assert normalized_wer([PHRASE], [events[0]["text"]]) <= 0.2
    assert events[1]["code"] == "busy" and ws.close_code == 4503


# 8. Caps apply to the whole utterance on the speech socket.


async def test_the_speech_cap_applies_to_the_whole_utterance_on_the_socket(service, settings):
    runtime = runtime_with(service, settings, max_speech_seconds=3.0)
    text = " ".join(f"This is sentence number {n} of the answer." for n in range(1, 9))
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": text}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
        errors = [e for e in events if e["type"] == "error"]
        assert [e["code"] for e in errors] == ["audio_too_long"]
        assert events[-1]["reason"] == "error" and events[-1]["audio_ms"] <= 3000
        await assert_still_serving(base)
