"""`noise_reduction` on the live surfaces: asked for in OpenAI's session shape (the `openai` client)
or as a `/v1/transcribe/ws` parameter, reported back, and applied before voice activity detection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from websockets.asyncio.client import connect

from speech_backend import Audio, resample
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.test_realtime import append, events_until, next_event, pcm24, realtime, session
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
