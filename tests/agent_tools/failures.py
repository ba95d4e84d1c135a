"""What the failure tests of every surface share: the canary round trip, memory, error codes and
the phrase they speak."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from agent_tools.core.runtime import Runtime
from tests.agent_tools.conftest import runtime_with
from tests.wer import normalized_wer

PHRASE = "Please read the meter on the second floor."
MEGABYTE = 1024 * 1024


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def assert_still_serving(base: str) -> None:
    """The canary: a speak + transcribe round trip over MCP on the same server."""
    async with Client(f"{base}/mcp") as client:
        spoken = await client.call_tool("speak", {"text": PHRASE, "format": "flac"})
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert not spoken.is_error and not heard.is_error, (spoken, heard)
    assert normalized_wer([PHRASE], [heard.structured_content["text"]]) <= 0.2


def error_of(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture(scope="module")
def phrase_audio(speak):
    return speak(PHRASE)


def policy_runtime(service, settings, tmp_path: Path, text: str, **service_settings: object) -> Runtime:
    """A runtime over the real engines with the policy file `text` (`{name}` is that name's token
    hash), and `service_settings` changed."""
    from policies import token_hash

    path = tmp_path / "policy.yaml"
    path.write_text(text.format(**{n: token_hash(f"{n}-token") for n in ("alice", "bob", "carol")}))
    with_policy = settings.model_copy(update={"policy_file": path})
    return runtime_with(service, with_policy, **service_settings)


@contextlib.asynccontextmanager
async def mcp_as(base: str, name: str):
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {name}-token"}, timeout=60) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client
