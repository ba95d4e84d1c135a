"""`noise_reduction` on the live surfaces: asked for in OpenAI's session shape (the `openai` client)
or as a `/v1/transcribe/ws` parameter, reported back, and applied before voice activity detection."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from websockets.asyncio.client import connect

from agent_tools.core.runtime import Runtime
from speech_backend import Audio, resample
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.web.test_realtime import append, events_until, next_event, pcm24, realtime, session
from tests.speech_backend.voice_activity.test_denoise import pink
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


async def test_realtime_noise_reduction_is_reported_and_speech_in_noise_is_transcribed(runtime, speak):
    said = "Please book a table for four people at seven."
    speech = resample(speak(said), 16000).samples
    stream = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(24000, np.float32)])
    noisy = Audio(stream + pink(len(stream) / 16000, seed=2), 16000)
    async with serve_http(runtime) as base, realtime(base) as conn:
        created = await next_event(conn)
        await conn.session.update(session=session({"noise_reduction": {"type": "near_field"}}))
        updated = await next_event(conn)
        await append(conn, pcm24(noisy))
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    assert created["session"]["audio"]["input"]["noise_reduction"] is None  # off unless asked
    assert updated["session"]["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    starts = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    assert len(starts) == 1  # the noise before the speech started nothing
    assert normalized_wer([said], [events[-1]["transcript"]]) <= 0.15, events[-1]["transcript"]


async def test_transcribe_socket_takes_noise_reduction_and_says_so_when_ready(runtime):
    async with serve_http(runtime) as base:
        url = base.replace("http://", "ws://") + "/v1/transcribe/ws?noise_reduction=far_field"
        async with connect(url) as ws:
            ready = json.loads(await ws.recv())
        bad = base.replace("http://", "ws://") + "/v1/transcribe/ws?noise_reduction=studio"
        async with connect(bad) as ws:
            refused = json.loads(await ws.recv())
    assert ready["type"] == "ready" and ready["noise_reduction"] == "far_field"
    assert refused["type"] == "error" and refused["code"] == "invalid_argument"
    assert "noise_reduction" in refused["message"]


async def test_without_the_live_models_semantic_turns_and_noise_reduction_are_refused_typed(
    settings, engines
):
    runtime = Runtime.build(settings, replace(engines, turn_model=None, denoiser=None))
    async with serve_http(runtime) as base:
        ws_base = base.replace("http://", "ws://") + "/v1/transcribe/ws"
        async with connect(ws_base + "?turn_detection=semantic") as ws:
            semantic = json.loads(await ws.recv())
        async with connect(ws_base + "?noise_reduction=near_field") as ws:
            noise = json.loads(await ws.recv())
        async with realtime(base) as conn:
            await next_event(conn)
            await conn.session.update(session=session({"turn_detection": {"type": "semantic_vad"}}))
            refused = await next_event(conn)
            await conn.session.update(session=session({"turn_detection": {"type": "server_vad"}}))
            served = await next_event(conn)
    for error, what in ((semantic, "semantic end of turn"), (noise, "noise_reduction")):
        assert (
            error["type"] == "error" and error["code"] == "backend_unavailable" and what in error["message"]
        )
    assert refused["type"] == "error" and refused["error"]["code"] == "backend_unavailable"
    assert served["type"] == "session.updated"  # the session goes on with what is served
