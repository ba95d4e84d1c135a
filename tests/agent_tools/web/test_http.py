"""The whole app over real loopback HTTP: streamable HTTP in both eras, legacy SSE, limits, probes."""

from __future__ import annotations

import base64

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from agent_tools.core.runtime import Runtime
from tests.agent_tools.conftest import eventually, runtime_with, serve_http
from tests.typed import blob, tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_speak_and_transcribe_over_streamable_http(runtime, mode):
    text = (
        "Streaming over real sockets works as well as in memory. "
        "The same tools answer in the same way on every transport."
    )
    async with serve_http(runtime) as base, Client(f"{base}/mcp", mode=mode) as client:
        spoken = await client.call_tool("speak", {"text": text, "format": "flac"})
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
        bad = await client.call_tool("speak", {"text": "hi", "voice": "nope"})
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.10
    assert bad.is_error and tool_error(bad)["code"] == "voice_not_found"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_large_speak_over_http_is_a_resource_link_readable_by_resources_read_and_get(
    runtime, long_text, mode
):
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp", mode=mode) as client:
            spoken = await client.call_tool("speak", {"text": long_text}, progress_callback=_ignore)
        meta = spoken.structured_content
        async with httpx2.AsyncClient() as http:
            got = await http.get(base + meta["download_path"])
            unbounded = streamable_http_client(f"{base}/mcp", http_client=http, max_sse_event_size=None)
            async with Client(unbounded, mode=mode) as client:
                read = await client.read_resource(meta["audio_uri"])
    assert meta["delivery"] == "resource_link" and meta["bytes"] > 1024 * 1024
    assert (
        got.status_code == 200
        and got.headers["content-type"] == "audio/wav"
        and len(got.content) == meta["bytes"]
    )
    assert base64.b64decode(blob(read)) == got.content


async def test_a_mid_sized_clip_reads_back_through_resources_read_within_the_default_event_limit(
    settings, service
):
    small = runtime_with(service, settings, inline_audio_max_bytes=20_000)
    async with serve_http(small) as base, Client(f"{base}/mcp") as client:
        spoken = await client.call_tool(
            "speak", {"text": "A clip of a few seconds.", "format": "wav", "inline_audio": True}
        )
        read = await client.read_resource(spoken.structured_content["audio_uri"])
    assert spoken.structured_content["delivery"] == "resource_link"
    assert len(base64.b64decode(blob(read))) == spoken.structured_content["bytes"]


async def test_an_unknown_download_path_is_refused(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        missing = await http.get(f"{base}/audio/not-a-clip.wav")
        foreign = await http.get(f"{base}/audio/x.wav", headers={"host": "evil.example"})
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "uri_forbidden"
    assert foreign.status_code == 421


async def test_legacy_sse_transport_serves_the_same_tools(runtime):
    async with serve_http(runtime) as base, Client(sse_client(f"{base}/sse")) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        voices = await client.call_tool("list_voices", {})
    assert names == ["list_voices", "speak", "transcribe"]
    assert voices.structured_content["voices"][0]["id"] == "en_US-joe-medium"


async def test_audio_above_the_sdk_default_body_limit_is_accepted(runtime, speak):
    from speech_backend import encode_audio

    wav = encode_audio(speak("A long recording. " * 40), "wav", sample_rate=48000)
    assert len(wav) * 4 / 3 > 4 * 1024 * 1024
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        heard = await client.call_tool("transcribe", {"audio_base64": base64.b64encode(wav).decode()})
    assert not heard.is_error and "recording" in heard.structured_content["text"].lower()


async def test_a_body_over_the_limit_is_refused_and_the_server_keeps_serving(settings, service):
    from speech_backend import AudioLimits

    engines = settings.engines.model_copy(update={"audio": AudioLimits(max_bytes=1000)})
    small = runtime_with(service, settings.model_copy(update={"engines": engines}))
    async with serve_http(small) as base:
        async with Client(f"{base}/mcp") as client:
            with pytest.raises(MCPError):
                await client.call_tool("transcribe", {"audio_base64": "A" * (3 * 1024 * 1024)})
        async with Client(f"{base}/mcp") as client:
            assert not (await client.call_tool("list_voices", {})).is_error


async def test_foreign_host_and_origin_headers_are_refused(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        host = await http.post(f"{base}/mcp", json=body, headers={**headers, "host": "evil.example"})
        origin = await http.post(
            f"{base}/mcp", json=body, headers={**headers, "origin": "http://evil.example"}
        )
    assert host.status_code == 421 and origin.status_code == 403


async def test_probes_and_metrics(runtime):
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            await client.call_tool("list_voices", {})
            await client.call_tool("speak", {"text": "hi", "voice": "nope"})
        async with httpx2.AsyncClient() as http:
            live = await http.get(f"{base}/healthz")
            ready = await http.get(f"{base}/readyz")
            metrics = (await http.get(f"{base}/metrics")).text
    assert live.json() == {"status": "ok"} and ready.json()["status"] == "ready"
    assert 'speech_tool_calls_total{outcome="ok",tool="list_voices"} 1.0' in metrics
    assert 'speech_tool_errors_total{code="voice_not_found",tool="speak"} 1.0' in metrics
    assert "speech_engine_queue_depth" in metrics


async def test_readyz_is_not_ready_while_models_load_and_ready_after(settings):
    runtime = Runtime.build(settings)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        first = await http.get(f"{base}/readyz")
        await eventually(lambda: runtime.engines.loaded is not None, within=60)
        second = await http.get(f"{base}/readyz")
    assert first.status_code == 503 and first.json() == {"status": "not_ready", "reason": "loading"}
    assert second.status_code == 200 and second.json()["status"] == "ready"
    assert second.json()["vad"] == "silero" and second.json()["voice"] == "en_US-joe-medium"


async def test_custom_headers_reach_the_server_through_an_explicit_transport(runtime):
    async with (
        serve_http(runtime) as base,
        httpx2.AsyncClient(headers={"x-trace": "1"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        assert not (await client.call_tool("list_voices", {})).is_error


async def _ignore(progress: float, total: float | None, message: str | None) -> None:
    return None
