"""The engines as a Ray Serve pool behind two stateless front-ends, all started by
`speech_cluster.local` as `make cluster` starts them: calls through either front-end, cancellation
that reaches the replica, a replica killed during a call, rates and quotas counted across the
front-ends' processes, and Redis stopped and started under them."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from policies import token_hash
from speech_backend import EngineSettings
from speech_cluster.local import GRPC_BASE_PORT, ClusterState, LocalCluster, free_port
from tests.typed import tool_error
from tests.wer import language_wer, normalized_wer
from tests.windows import HOUR, room_in_the_window

pytestmark = [pytest.mark.anyio, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[2]
LONG = " ".join(f"This is sentence number {n} of a long answer that keeps going." for n in range(1, 41))


POOL_TOKEN = "pool-token"  # no limits: the calls of most tests
METERED_TOKEN = "metered-token"  # 3 calls a minute, 60 characters an hour
KEPT_TOKEN = "kept-token"  # 40 characters an hour: counts that outlive a Redis restart
POLICY = f"""version: 1
local_principal: pool
principals:
  - id: pool
    token_sha256: [{token_hash(POOL_TOKEN)}]
  - id: metered
    token_sha256: [{token_hash(METERED_TOKEN)}]
    rate_per_minute: 3
    quota: {{chars_per_hour: 60}}
  - id: kept
    token_sha256: [{token_hash(KEPT_TOKEN)}]
    quota: {{chars_per_hour: 40}}
"""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, engine_settings: EngineSettings
) -> Iterator[LocalCluster]:
    state_dir = tmp_path_factory.mktemp("cluster")
    policy = state_dir / "policy.yaml"
    policy.write_text(POLICY)
    local = LocalCluster(state_dir, cache_dir=engine_settings.cache_dir)
    with pytest.MonkeyPatch.context() as env:
        # round trips heard the same every run: speech without sampling noise, as in the other suites
        env.setenv("SPEECH_TOOLS_SERVICE__DETERMINISTIC_SPEECH", "true")
        local.up([free_port(), free_port()], policy_file=policy)
    yield local
    local.down()


@pytest.fixture
def pool(cluster: LocalCluster) -> ClusterState:
    state = cluster.state()
    assert state is not None
    return state


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def front_ends(state: ClusterState) -> tuple[str, str]:
    a, b = state.front_end_ports
    return f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"


async def admin(cluster: LocalCluster, *command: str) -> dict[str, int]:
    state = cluster.state()
    assert state is not None
    done = await anyio.run_process(
        [sys.executable, "-m", "tests.cluster.pool_admin", state.ray_address, *command],
        cwd=ROOT,
        check=False,
        env=cluster.ray_env(),
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result: dict[str, int] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@asynccontextmanager
async def mcp_client(
    base: str, mode: Literal["auto", "legacy"] = "auto", token: str = POOL_TOKEN
) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(timeout=120, headers=bearer(token)) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


async def polled(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.2) -> None:
    """Wait until `check()` holds, polling (the pool's state lives in other processes)."""
    with anyio.fail_after(within):
        for _ in itertools.count():
            if await check():
                return
            await anyio.sleep(every)


async def ready(base: str, within: float = 120) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:

        async def answers() -> bool:
            return (await http.get(f"{base}/readyz")).status_code == 200

        await polled(answers, within, 0.5)


async def test_speech_made_through_one_front_end_is_transcribed_through_the_other(cluster, pool):
    text = "The engines run in a pool. Any front end can reach them."
    a, b = front_ends(pool)
    spoke_before = await admin(cluster, "stats")
    heard_before = await admin(cluster, "recognition-stats")
    async with mcp_client(a) as client:
        spoken = await client.call_tool("speak", {"text": text})
    async with mcp_client(b, mode="legacy") as client:  # an initialize-era client: no session to pin
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert not spoken.is_error and spoken.structured_content["words"]
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.15
    # the replicas were told each request's class by the front-ends: they serve by priority too
    spoke, heard_stats = await admin(cluster, "stats"), await admin(cluster, "recognition-stats")
    made = {k: spoke.get(k, 0) - spoke_before.get(k, 0) for k in ("first_audio", "later_audio")}
    assert made == {"first_audio": 1, "later_audio": 1}
    assert heard_stats.get("batch", 0) - heard_before.get("batch", 0) == 1


async def test_every_front_end_serves_the_riva_grpc_api_through_the_pool(pool):
    import riva.client

    text = "The parcel arrives on Thursday before noon."
    first, second = (f"127.0.0.1:{GRPC_BASE_PORT + n}" for n in range(2))
    metadata = [["authorization", f"Bearer {POOL_TOKEN}"]]

    def run() -> str:
        spoken = riva.client.SpeechSynthesisService(riva.client.Auth(uri=first, metadata_args=metadata))
        audio = spoken.synthesize(text, sample_rate_hz=16000).audio
        config = riva.client.RecognitionConfig(
            sample_rate_hertz=16000, language_code="en-US", audio_channel_count=1
        )
        heard = riva.client.ASRService(riva.client.Auth(uri=second, metadata_args=metadata))
        return " ".join(r.alternatives[0].transcript for r in heard.offline_recognize(audio, config).results)

    assert normalized_wer([text], [await anyio.to_thread.run_sync(run)]) <= 0.15


async def test_kokoro_voices_are_served_by_the_pool_and_heard_back_in_their_language(pool):
    text = "El tren sale de la estación a las ocho de la mañana."
    a, b = front_ends(pool)
    async with mcp_client(a) as client:
        listed = await client.call_tool("list_voices", {"language": "ja"})
        spoken = await client.call_tool("speak", {"text": text, "voice": "ef_dora"})
    assert not spoken.is_error, spoken.content
    async with mcp_client(b) as client:
        heard = await client.call_tool(
            "transcribe", {"audio_uri": spoken.structured_content["audio_uri"], "language": "es"}
        )
    assert len(listed.structured_content["voices"]) == 5  # the replicas' catalogue, Japanese included
    result = spoken.structured_content
    assert (result["engine"], result["sample_rate"]) == ("kokoro", 24000) and result["words"]
    assert language_wer(text, heard.structured_content["text"], "es") <= 0.25


async def test_a_stream_cancelled_on_a_front_end_stops_synthesis_on_the_replica(cluster, pool):
    a, _ = front_ends(pool)
    before = await admin(cluster, "stats")
    async with (
        httpx2.AsyncClient(timeout=60, headers=bearer(POOL_TOKEN)) as http,
        http.stream("POST", f"{a}/v1/speak/stream", json={"text": LONG}) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("event: audio"):
                break  # barge-in: the listener hangs up after the first sentence
    stats: dict[str, int] = {}

    async def idle() -> bool:
        stats.update(await admin(cluster, "stats"))
        return stats["active"] == 0

    await polled(idle, 30)
    assert stats["sentences"] - before["sentences"] < 20  # of 40: stopped, not finished


async def test_a_replica_killed_during_a_call_fails_it_typed_and_the_pool_recovers(cluster, pool):
    a, _ = front_ends(pool)
    async with mcp_client(a) as client:
        async with anyio.create_task_group() as tg:
            outcome: list[CallToolResult] = []

            async def speak() -> None:
                outcome.append(await client.call_tool("speak", {"text": LONG}))

            tg.start_soon(speak)

            async def speaking() -> bool:
                return (await admin(cluster, "stats"))["active"] > 0

            await polled(speaking, 60, 0.1)
            killed = await admin(cluster, "kill", "synthesis")
        result = outcome[0]
        assert killed["killed"] >= 1
        assert result.is_error, "the call went on after its replica died"
        error = tool_error(result)
        assert error["code"] == "backend_unavailable" and error["retryable"] is True
        await ready(a)  # Ray Serve replaced the replica
        again = await client.call_tool("speak", {"text": "Back again."})
    assert not again.is_error


def code(result: CallToolResult) -> str:
    assert result.is_error, result
    return str(tool_error(result)["code"])


async def test_rate_and_character_quota_are_counted_across_front_end_processes(pool):
    a, b = front_ends(pool)
    await room_in_the_window(40)
    async with mcp_client(a, token=METERED_TOKEN) as via_a, mcp_client(b, token=METERED_TOKEN) as via_b:
        first = await via_a.call_tool("speak", {"text": "Twenty five characters ok."})
        second = await via_b.call_tool("speak", {"text": "Twenty five characters ok."})
        over_chars = await via_a.call_tool("speak", {"text": "Twenty five characters ok."})  # 75 > 60
        third = await via_b.call_tool("speak", {"text": "Short."})  # the third call of the minute
        over_rate = await via_a.call_tool("speak", {"text": "Hi."})
    assert not first.is_error and not second.is_error and not third.is_error
    assert code(over_chars) == "rate_limited" and tool_error(over_chars)["rule"] == "chars_per_hour"
    assert code(over_rate) == "rate_limited" and tool_error(over_rate)["rule"] == "calls_per_minute"


async def test_redis_stopped_is_backend_unavailable_on_every_front_end_and_counts_survive(cluster, pool):
    a, b = front_ends(pool)
    await room_in_the_window(120, window=HOUR)
    async with mcp_client(a, token=KEPT_TOKEN) as via_a, mcp_client(b, token=KEPT_TOKEN) as via_b:
        spoken = await via_a.call_tool("speak", {"text": "Thirty characters are counted."})
        cluster.stop_redis()
        try:
            down = await via_b.call_tool("speak", {"text": "Hi."})
            unreadable = await via_b.call_tool(
                "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
            )
        finally:
            cluster.start_redis()
        over = await via_b.call_tool("speak", {"text": "Eleven more"})  # 30 + 11 > 40: counted before
        within = await via_a.call_tool("speak", {"text": "Nine chr."})  # 39: within
        heard = await via_b.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert not spoken.is_error
    for failed in (down, unreadable):
        assert code(failed) == "backend_unavailable" and tool_error(failed)["retryable"] is True
    assert code(over) == "rate_limited" and not within.is_error
    assert not heard.is_error, heard
    assert "counted" in heard.structured_content["text"].lower()  # the clip outlived the restart too
