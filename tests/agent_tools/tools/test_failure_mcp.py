"""Hostile and faulty inputs over MCP (streamable HTTP and legacy SSE): many-channel audio,
hostile URIs, a missing token, and who may read a clip."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.agent_tools.conftest import runtime_with, serve_http
from tests.agent_tools.failures import (
    PHRASE,
    assert_still_serving,
    error_of,
    mcp_as,
    phrase_audio,
    policy_runtime,
)
from tests.media import container_bytes
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
__all__ = ["phrase_audio"]  # the fixture, shared


async def test_eight_channel_audio_transcribes_over_mcp_and_legacy_sse(runtime, phrase_audio):
    flac = base64.b64encode(container_bytes(phrase_audio, "flac", "flac", channels=8)).decode()
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            over_mcp = await client.call_tool("transcribe", {"audio_base64": flac})
        async with Client(sse_client(f"{base}/sse")) as client:
            over_sse = await client.call_tool("transcribe", {"audio_base64": flac})
        await assert_still_serving(base)
    for result in (over_mcp, over_sse):
        assert not result.is_error, result
        assert normalized_wer([PHRASE], [result.structured_content["text"]]) <= 0.2


async def test_a_file_uri_with_a_nul_byte_is_uri_forbidden(service, settings, tmp_path):
    runtime = runtime_with(service, settings, file_roots=(tmp_path,))
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        result = await client.call_tool("transcribe", {"audio_uri": f"file://{tmp_path}/a%00.wav"})
        assert result.is_error and tool_error(result)["code"] == "uri_forbidden"
        await assert_still_serving(base)


async def test_mcp_without_a_token_gets_the_contract_401(settings, tmp_path):
    from policies import token_hash
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nprincipals:\n  - id: a\n    token_sha256: [{token_hash('a-token')}]\n")
    runtime, _ = fake_runtime(settings, policy)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        response = await http.post(f"{base}/mcp", json=body, headers=headers)
    assert error_of(response) == (401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


# 6. A clip is readable by the principal that made it (or one it shares with), and every read is audited.

CLIP_POLICY = """
version: 1
audit:
  path: audit.log
principals:
  - id: alice
    token_sha256: [{alice}]
    shares_audio_with: [carol]
  - id: bob
    token_sha256: [{bob}]
  - id: carol
    token_sha256: [{carol}]
"""


async def test_a_clip_is_readable_only_by_its_maker_and_those_it_is_shared_with(service, settings, tmp_path):
    from mcp import MCPError

    runtime = policy_runtime(service, settings, tmp_path, CLIP_POLICY)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        async with mcp_as(base, "alice") as alice:
            spoken = (await alice.call_tool("speak", {"text": PHRASE, "format": "flac"})).structured_content
        uri, path = spoken["audio_uri"], spoken["download_path"]
        async with mcp_as(base, "bob") as bob:
            stolen = await bob.call_tool("transcribe", {"audio_uri": uri})
            with pytest.raises(MCPError, match="unknown or has expired"):
                await bob.read_resource(uri)
        bob_get = await http.get(base + path, headers={"authorization": "Bearer bob-token"})
        carol_get = await http.get(base + path, headers={"authorization": "Bearer carol-token"})
        async with mcp_as(base, "alice") as alice:
            heard = await alice.call_tool("transcribe", {"audio_uri": uri})
            read = await alice.read_resource(uri)
    assert stolen.is_error and tool_error(stolen)["code"] == "uri_forbidden"
    assert error_of(bob_get) == (403, "uri_forbidden")
    assert carol_get.status_code == 200 and carol_get.content == base64.b64decode(read.contents[0].blob)
    assert normalized_wer([PHRASE], [heard.structured_content["text"]]) <= 0.2
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    reads = [
        (r["principal"], r["decision"], r.get("code"), r["transport"])
        for r in lines
        if r["tool"] == "read_audio"
    ]
    assert reads == [
        ("bob", "deny", "uri_forbidden", "mcp"),
        ("bob", "deny", "uri_forbidden", "mcp"),
        ("bob", "deny", "uri_forbidden", "http"),
        ("carol", "allow", None, "http"),
        ("alice", "allow", None, "mcp"),
        ("alice", "allow", None, "mcp"),
    ]
