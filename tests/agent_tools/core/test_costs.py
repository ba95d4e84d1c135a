"""Every result says what it cost, on every surface: queue wait, engine time, wall time and the
real-time factor, consistent with each other (the parts never add up past the whole) and counted in
the Prometheus histograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from openai import OpenAI

from agent_tools.core.runtime import Runtime
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.core.test_core import pcm_of, transcribe_live
from tests.agent_tools.web.test_http_routes import read_events

pytestmark = pytest.mark.anyio
TEXT = "The parcel arrives on Thursday. It will be left at the door."


def assert_consistent(cost: dict[str, Any], audio_seconds: float) -> None:
    assert set(cost) == {"queue_ms", "engine_ms", "wall_ms", "real_time_factor"}
    assert cost["engine_ms"] > 0 and cost["queue_ms"] >= 0
    assert cost["queue_ms"] + cost["engine_ms"] <= cost["wall_ms"]
    assert cost["real_time_factor"] == pytest.approx(cost["engine_ms"] / 1000 / audio_seconds, abs=0.01)


def histogram_count(runtime: Runtime, name: str, **labels: str) -> float:
    value = runtime.metrics.registry.get_sample_value(f"{name}_count", labels)
    return float(value or 0.0)


async def test_mcp_speak_and_transcribe_results_carry_their_cost(runtime, server):
    async with Client(server) as client:
        spoken = await client.call_tool("speak", {"text": TEXT})
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    speech, transcript = spoken.structured_content, heard.structured_content
    assert_consistent(speech["cost"], speech["duration_seconds"])
    assert_consistent(transcript["cost"], transcript["duration_seconds"])
    assert histogram_count(runtime, "speech_real_time_factor", engine="synthesis") == 1
    assert histogram_count(runtime, "speech_real_time_factor", engine="recognition") == 1
    assert histogram_count(runtime, "speech_engine_queue_wait_seconds", engine="recognition") == 1
    assert (
        histogram_count(runtime, "speech_engine_queue_wait_seconds", engine="sentences") >= 2
    )  # per sentence


async def test_streamed_speech_done_events_and_openai_transcription_headers_carry_the_cost(
    runtime, tmp_path: Path
):
    done: dict[str, Any] = {}
    async with serve_http(runtime) as base:
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            http.stream("POST", f"{base}/v1/speak/stream", json={"text": TEXT}) as response,
        ):
            async for event, data in read_events(response):
                if event == "done":
                    done = data

        def use_client() -> tuple[dict[str, str], list[Any]]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                wav = client.audio.speech.create(
                    model="tts-1", voice="alloy", input=TEXT, response_format="wav"
                )
                path = tmp_path / "speech.wav"
                path.write_bytes(wav.read())
                with path.open("rb") as f:
                    raw = client.audio.transcriptions.with_raw_response.create(
                        model="whisper-1", file=f, response_format="verbose_json"
                    )
                sse = client.audio.speech.create(
                    model="tts-1", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
                )
                events = [e for e in sse.iter_lines() if e]
                return dict(raw.headers), events

        headers, sse_lines = await anyio.to_thread.run_sync(use_client)
    assert_consistent(done["cost"], done["audio_ms"] / 1000)
    asr = {
        k.removeprefix("x-speech-").replace("-", "_"): v
        for k, v in headers.items()
        if k.startswith("x-speech-")
    }
    cost = {k: float(v) if k == "real_time_factor" else int(v) for k, v in asr.items()}
    assert cost["queue_ms"] + cost["engine_ms"] <= cost["wall_ms"] and cost["engine_ms"] > 0
    last = sse_lines[-1]
    assert '"type": "speech.audio.done"' in last and '"cost": {"queue_ms"' in last
    assert histogram_count(runtime, "speech_time_to_first_audio_seconds", surface="speak_stream") == 1
    assert histogram_count(runtime, "speech_time_to_first_audio_seconds", surface="openai_speech") == 2


async def test_live_finals_carry_the_cost_of_their_decoding(service, speak):
    audio = speak(TEXT)
    events = await transcribe_live(service, pcm_of(service, audio))
    finals = [e for e in events if e["type"] == "final"]
    assert finals
    for final in finals:
        assert_consistent(final["cost"], final["duration"])
