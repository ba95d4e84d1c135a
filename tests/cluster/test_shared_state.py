"""Two front-ends sharing a real redis-server: clips made on one are read on the other, rates and
quotas are counted across both, Redis down is `backend_unavailable`, and counts survive a restart."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from policies import token_hash
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


def limited_policy(tmp_path: Path, **limits: object) -> Path:
    lines = "".join(f"    {k}: {v}\n" for k, v in limits.items() if k != "quota")
    quota = limits.get("quota")
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\nlocal_principal: app\nprincipals:\n  - id: app\n"
        f"    token_sha256: [{token_hash(TOKEN)}]\n{lines}" + (f"    quota: {quota}\n" if quota else "")
    )
    return path


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


async def test_rate_and_character_quota_are_counted_across_front_ends(
    engines, engine_settings, redis_server, tmp_path
):
    policy = limited_policy(tmp_path, rate_per_minute=3, quota="{chars_per_hour: 60}")
    a = front_end(engines, engine_settings, redis_server.url, policy)
    b = front_end(engines, engine_settings, redis_server.url, policy)
    async with (
        serve_http(a) as base_a,
        serve_http(b) as base_b,
        mcp_client(base_a, TOKEN) as client_a,
        mcp_client(base_b, TOKEN) as client_b,
    ):
        first = await client_a.call_tool("speak", {"text": "Twenty five characters ok."})
        second = await client_b.call_tool("speak", {"text": "Twenty five characters ok."})
        over_chars = await client_a.call_tool("speak", {"text": "Twenty five characters ok."})  # 75 > 60
        third = await client_b.call_tool("speak", {"text": "Short."})  # the third call of the minute
        over_rate = await client_a.call_tool("speak", {"text": "Hi."})
    assert not first.is_error and not second.is_error and not third.is_error
    assert code(over_chars) == "rate_limited" and tool_error(over_chars)["rule"] == "chars_per_hour"
    assert code(over_rate) == "rate_limited" and tool_error(over_rate)["rule"] == "calls_per_minute"


async def test_redis_down_is_backend_unavailable_and_counts_survive_its_restart(
    engines, engine_settings, redis_server, tmp_path
):
    policy = limited_policy(tmp_path, quota="{chars_per_hour: 40}")
    a = front_end(engines, engine_settings, redis_server.url, policy)
    async with serve_http(a) as base, mcp_client(base, TOKEN) as client:
        spoken = await client.call_tool("speak", {"text": "Thirty characters are counted."})
        redis_server.stop()
        down = await client.call_tool("speak", {"text": "Hi."})
        unreadable = await client.call_tool(
            "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
        )
        redis_server.start()
        over = await client.call_tool("speak", {"text": "Eleven more"})  # 30 + 11 > 40: counted before
        within = await client.call_tool("speak", {"text": "Nine chr."})  # 39: within
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert not spoken.is_error
    for failed in (down, unreadable):
        assert code(failed) == "backend_unavailable" and tool_error(failed)["retryable"] is True
    assert code(over) == "rate_limited" and not within.is_error
    assert not heard.is_error, heard
    assert "counted" in heard.structured_content["text"].lower()  # the clip outlived the restart too
