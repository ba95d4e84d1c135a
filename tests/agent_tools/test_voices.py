"""Every installed engine's voices through the service: Kokoro's beside Piper's, over MCP and the
OpenAI route, each file marked with the engine that made it."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp import Client

from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime
from speech_backend import decode_audio, is_marked_synthetic
from speech_backend.config import AudioLimits
from tests.agent_tools.conftest import serve_http
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def catalog_engines(engine_settings, engines: Engines) -> Engines:
    """The engines a server loads: every installed synthesizer behind one catalogue (the recognizer
    and VAD of the session's engines, already loaded)."""
    from dataclasses import replace

    from speech_backend import build_synthesizer, resolve_device

    return replace(engines, synthesizer=build_synthesizer(engine_settings, resolve_device("cpu"), "catalog"))


async def test_a_kokoro_voice_speaks_over_mcp_and_the_openai_route_marked_as_kokoro(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    text = "The train to London leaves from platform four at nine."
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            listed = await client.call_tool("list_voices", {"language": "en_GB"})
            spoken = await client.call_tool("speak", {"text": text, "voice": "bf_emma", "format": "wav"})
            heard = await client.call_tool(
                "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
            )
        async with httpx2.AsyncClient(timeout=60) as http:
            body = {"model": "tts-1", "input": text, "voice": "bm_george", "response_format": "mp3"}
            mp3 = await http.post(f"{base}/v1/audio/speech", json=body)
    voices = listed.structured_content["voices"]
    assert len(voices) == 8 and {v["engine"] for v in voices} == {"kokoro"}
    result = spoken.structured_content
    assert (result["engine"], result["sample_rate"], result["voice"]) == ("kokoro", 24000, "bf_emma")
    starts = [w["start"] for w in result["words"]]
    assert [w["text"] for w in result["words"]] == text.split() and starts == sorted(starts)
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.15
    assert mp3.status_code == 200
    decoded = await anyio.to_thread.run_sync(lambda: decode_audio(mp3.content, AudioLimits()))
    assert is_marked_synthetic(decoded.metadata) and "engine=kokoro" in decoded.metadata["comment"]
