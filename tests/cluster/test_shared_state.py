"""Two in-process front-ends sharing a real redis-server: a clip made on one is read (resource,
download) and transcribed on the other. Rates, quotas and Redis restarts are tested through the
subprocess cluster's front-ends (test_engine_pool.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from anyio.abc import SocketAttribute, SocketStream
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.agent_tools.conftest import serve_http
from tests.cluster.conftest import front_end
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = [pytest.mark.anyio, pytest.mark.cluster]
TOKEN = "shared-state-token"


@asynccontextmanager
async def unanswering_redis() -> AsyncIterator[tuple[str, anyio.Event]]:
    """The URL of a "Redis" that accepts connections and never answers (a hung or partitioned
    server), and an event set once a client has connected to it."""
    connected = anyio.Event()

    async def hold(stream: SocketStream) -> None:
        connected.set()
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        yield f"redis://127.0.0.1:{port}/0", connected
        tg.cancel_scope.cancel()


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
    from tests.agent_tools.web.test_sockets import closed_with, receive, ws_url

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


async def test_a_redis_that_does_not_answer_holds_only_the_calls_that_need_it(
    engines, engine_settings, tmp_path
):
    from policies import token_hash

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: free\nprincipals:\n"
        f"  - id: metered\n    token_sha256: [{token_hash('metered')}]\n    rate_per_minute: 100\n"
        f"  - id: free\n    token_sha256: [{token_hash('free')}]\n"
    )
    done: list[tuple[str, int]] = []
    async with unanswering_redis() as (url, connected):
        runtime = front_end(engines, engine_settings, url, policy, redis_timeout=5.0)
        async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=30) as http:

            async def get(path: str, token: str, label: str) -> None:
                response = await http.get(base + path, headers={"authorization": f"Bearer {token}"})
                done.append((label, response.status_code))
                if label == "metered":
                    assert response.json()["error"]["code"] == "backend_unavailable"

            async with anyio.create_task_group() as tg:
                tg.start_soon(get, "/v1/audio/voices", "metered", "metered")  # its rate is counted in Redis
                await connected.wait()  # the call now waits on Redis
                await get("/healthz", "free", "probe")
                await get("/v1/audio/voices", "free", "unmetered")  # nothing to count: no Redis
    # the front-end kept serving while one call waited out the Redis timeout
    assert done == [("probe", 200), ("unmetered", 200), ("metered", 503)]


def test_redis_tickets_a_flooding_principal_drops_only_its_own_oldest(redis_server):
    import secrets

    import redis

    from agent_tools.cluster.redis_socket_tickets import RedisSocketTickets
    from policies import Unauthorized

    client = redis.Redis.from_url(redis_server.url)
    prefix = f"tickets-{secrets.token_hex(4)}"
    tickets = RedisSocketTickets(client, ttl_seconds=30, prefix=prefix, per_principal=3)
    theirs = tickets.issue("b")
    flood = [tickets.issue("a") for _ in range(50)]
    assert tickets.redeem(theirs) == "b"  # another principal's ticket outlives the flood
    assert tickets.redeem(flood[-1]) == "a"
    with pytest.raises(Unauthorized):
        tickets.redeem(flood[0])  # a's own oldest went
    assert client.llen(f"{prefix}:tickets-of:a") == 2
    assert len(client.keys(f"{prefix}:ticket:*")) == 2  # nothing else is kept
    client.close()
