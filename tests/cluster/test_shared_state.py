"""Two in-process front-ends sharing a real redis-server: a clip made on one is read (resource,
download) and transcribed on the other. Rates, quotas and Redis restarts are tested through the
subprocess cluster's front-ends (test_engine_pool.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.agent_tools.conftest import serve_http
from tests.cluster.conftest import front_end
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = [pytest.mark.anyio, pytest.mark.cluster]
TOKEN = "shared-state-token"


@asynccontextmanager
async def mcp_client(base: str, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


def code(result) -> str:
    assert result.is_error, result
    return str(tool_error(result)["code"])


async def test_a_clip_spoken_through_one_front_end_is_read_and_transcribed_through_another(
    engines, engine_settings, redis_server
):
    text = "The parcel arrives on Thursday before noon."
    a = front_end(engines, engine_settings, redis_server.url)
    b = front_end(engines, engine_settings, redis_server.url)
    async with serve_http(a) as base_a, serve_http(b) as base_b:
        async with mcp_client(base_a) as client:
            spoken = await client.call_tool("speak", {"text": text, "format": "mp3"})
        meta = spoken.structured_content
        async with mcp_client(base_b) as client:
            heard = await client.call_tool("transcribe", {"audio_uri": meta["audio_uri"]})
            read = await client.read_resource(meta["audio_uri"])
        async with httpx2.AsyncClient() as http:
            download = await http.get(base_b + meta["download_path"])
    assert not spoken.is_error and not heard.is_error
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.15
    data = base64.b64decode(read.contents[0].blob)  # type: ignore[union-attr]
    assert len(data) == meta["bytes"] == len(download.content) and download.content == data
    assert download.headers["content-type"] == "audio/mpeg"


async def test_a_socket_ticket_from_one_front_end_opens_a_socket_on_another_once(
    engines, engine_settings, redis_server, tmp_path
):
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from policies import token_hash
    from tests.agent_tools.test_sockets import closed_with, receive, ws_url

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: 1\nlocal_principal: a\nprincipals:\n  - id: a\n    token_sha256: [{token_hash(TOKEN)}]\n"
    )
    a = front_end(engines, engine_settings, redis_server.url, policy)
    b = front_end(engines, engine_settings, redis_server.url, policy)
    async with serve_http(a) as base_a, serve_http(b) as base_b, httpx2.AsyncClient() as http:
        issued = await http.post(f"{base_a}/v1/socket-tickets", headers={"authorization": f"Bearer {TOKEN}"})
        offered = [Subprotocol(p) for p in issued.json()["subprotocols"]]
        async with connect(ws_url(base_b, "/v1/speak/ws"), subprotocols=offered) as ws:
            assert (await receive(ws))["type"] == "ready"
        async with connect(ws_url(base_a, "/v1/speak/ws"), subprotocols=offered) as ws:
            error, close = await closed_with(ws)  # spent on b: spent everywhere
    assert (error["code"], close) == ("unauthorized", 4401)
