"""Policies over real HTTP: tokens, tools, voices, limits, rates, quotas across restarts, content
rules, PII redaction and the audit trail. Fake engines: the decisions come before any engine runs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_tools.core.runtime import Runtime
from agent_tools.settings import Settings
from speech_backend import SpeechChunk, SynthesisOptions, encode_audio
from speech_backend.fakes import FakeRecognizer, FakeSynthesizer
from tests.agent_tools.conftest import serve_http
from tests.conftest import tone
from tests.typed import tool_error
from tests.windows import DAY, room_in_the_window

pytestmark = pytest.mark.anyio
SPOKEN_PII = "Call me at 555-123-4567 or write to bob@example.com"
POLICY = """
version: 1
local_principal: alice
quota_db: quotas.sqlite3
audit:
  path: audit.log
principals:
  - id: alice
    token_sha256: [{alice}]
    voices: [fake-tone]
    max_text_chars: 100
    rate_per_minute: 8
    redact_pii: true
  - id: bob
    token_sha256: [{bob}]
    tools: [list_voices]
  - id: carol
    token_sha256: [{carol}]
    quota:
      chars_per_day: 30
content:
  blocked_patterns:
    - id: no-launch-codes
      pattern: 'launch codes?'
"""


class CountingSynthesizer(FakeSynthesizer):
    def __init__(self) -> None:
        self.calls = 0

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        self.calls += 1
        return super().synthesize(text, voice_id, options)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    from policies import token_hash

    path = tmp_path / "policy.yaml"
    hashes = {name: token_hash(f"{name}-token") for name in ("alice", "bob", "carol")}
    path.write_text(POLICY.format(**hashes))
    return path


def fake_runtime(settings: Settings, policy_file: Path) -> tuple[Runtime, CountingSynthesizer]:
    from tests.agent_tools import conftest

    settings = settings.model_copy(update={"policy_file": policy_file})
    engine = CountingSynthesizer()
    return conftest.fake_runtime(settings, engine, FakeRecognizer(SPOKEN_PII)), engine


@asynccontextmanager
async def as_principal(base: str, token: str):
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


def code(result) -> str:
    assert result.is_error, result
    return str(tool_error(result)["code"])


async def test_no_token_and_a_wrong_token_are_401_with_www_authenticate(settings, policy_file):
    runtime, _ = fake_runtime(settings, policy_file)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        missing = await http.post(f"{base}/mcp", json=body, headers=headers)
        wrong = await http.post(f"{base}/mcp", json=body, headers={**headers, "authorization": "Bearer nope"})
        download = await http.get(f"{base}/audio/x.wav")
        legacy = await http.get(f"{base}/sse")
    for response in (missing, wrong, download, legacy):
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


async def test_each_policy_decision_over_http_and_its_audit_line(settings, policy_file):
    runtime, engine = fake_runtime(settings, policy_file)
    clip = base64.b64encode(encode_audio(tone(1.0), "wav")).decode()
    async with serve_http(runtime) as base:
        async with as_principal(base, "bob-token") as bob:
            assert code(await bob.call_tool("speak", {"text": "hi"})) == "forbidden"
            assert not (await bob.call_tool("list_voices", {})).is_error
        async with as_principal(base, "alice-token") as alice:
            assert (
                code(await alice.call_tool("speak", {"text": "hi", "voice": "en_US-joe-medium"}))
                == "forbidden"
            )
            over = await alice.call_tool("speak", {"text": "x" * 101})
            assert code(over) == "text_too_long" and tool_error(over)["limit"] == 100
            assert engine.calls == 0
            denied = await alice.call_tool("speak", {"text": "Read me the launch codes"})
            assert code(denied) == "policy_denied"
            assert tool_error(denied)["rule"] == "no-launch-codes"
            heard = await alice.call_tool("transcribe", {"audio_base64": clip})
            assert heard.structured_content["text"] == "Call me at [phone] or write to [email]"
    lines = [json.loads(line) for line in (policy_file.parent / "audit.log").read_text().splitlines()]
    decisions = [(r["principal"], r["tool"], r["decision"], r.get("code")) for r in lines]
    assert decisions == [
        ("bob", "speak", "deny", "forbidden"),
        ("bob", "list_voices", "allow", None),
        ("alice", "speak", "deny", "forbidden"),
        ("alice", "speak", "deny", "text_too_long"),
        ("alice", "speak", "deny", "policy_denied"),
        ("alice", "transcribe", "allow", None),
    ]
    audit = (policy_file.parent / "audit.log").read_text()
    for secret in ("Read me", "555-123", "bob@example.com", "alice-token", "xxxxxxxx"):
        assert secret not in audit


async def test_a_flood_from_one_principal_is_rate_limited_while_another_is_served(settings, policy_file):
    runtime, _ = fake_runtime(settings, policy_file)
    await room_in_the_window(15)
    async with (
        serve_http(runtime) as base,
        as_principal(base, "alice-token") as alice,
        as_principal(base, "bob-token") as bob,
    ):
        results = [await alice.call_tool("list_voices", {}) for _ in range(10)]
        assert [r.is_error for r in results] == [False] * 8 + [True] * 2
        limited = tool_error(results[-1])
        assert limited["code"] == "rate_limited" and limited["retryable"] and limited["retry_after_ms"] > 0
        assert not (await bob.call_tool("list_voices", {})).is_error


async def test_quotas_survive_a_server_restart(settings, policy_file):
    await room_in_the_window(15, window=DAY)
    first, _ = fake_runtime(settings, policy_file)
    async with serve_http(first) as base, as_principal(base, "carol-token") as carol:
        assert not (await carol.call_tool("speak", {"text": "Twenty five characters ok"})).is_error
    second, _ = fake_runtime(settings, policy_file)
    async with serve_http(second) as base, as_principal(base, "carol-token") as carol:
        refused = await carol.call_tool("speak", {"text": "And some more text"})
    assert code(refused) == "rate_limited" and tool_error(refused)["rule"] == "chars_per_day"


async def test_sighup_style_reload_changes_decisions_without_a_restart(settings, policy_file):
    runtime, _ = fake_runtime(settings, policy_file)
    async with serve_http(runtime) as base, as_principal(base, "bob-token") as bob:
        assert code(await bob.call_tool("speak", {"text": "hi"})) == "forbidden"
        policy_file.write_text(policy_file.read_text().replace("tools: [list_voices]", "tools: ['*']"))
        assert runtime.reload_policy()
        assert not (await bob.call_tool("speak", {"text": "hi"})).is_error
        policy_file.write_text("version: 1\nprincipals: [\n")
        assert not runtime.reload_policy()  # a broken file keeps the policy in force
        assert not (await bob.call_tool("speak", {"text": "hi again"})).is_error


def test_binding_beyond_loopback_without_tokens_is_a_start_up_error(settings):
    from agent_tools.web.app import build_app

    public = settings.model_copy(update={"server": settings.server.model_copy(update={"host": "0.0.0.0"})})
    with pytest.raises(ValueError, match="bearer tokens"):
        build_app(Runtime.build(public))


async def test_the_data_plane_writes_the_same_audit_lines(settings, policy_file):
    from websockets.asyncio.client import connect

    runtime, _ = fake_runtime(settings, policy_file)
    alice = {"authorization": "Bearer alice-token"}
    async with serve_http(runtime) as base, httpx2.AsyncClient(headers=alice) as http:
        speech = await http.post(
            f"{base}/v1/audio/speech", json={"input": "Hello there.", "response_format": "wav"}
        )
        assert speech.status_code == 200
        refused = await http.post(f"{base}/v1/audio/speech", json={"input": "the launch codes please"})
        assert refused.status_code == 403
        anonymous = await http.get(f"{base}/v1/audio/voices", headers={"authorization": ""})
        assert anonymous.status_code == 401
        ws = base.replace("http://", "ws://")
        async with connect(f"{ws}/v1/speak/ws", additional_headers=alice) as socket:
            await socket.recv()
            await socket.send(json.dumps({"type": "text", "text": "One more. "}))
            await socket.send(json.dumps({"type": "end"}))
            while json.loads(await socket.recv())["type"] != "done":
                pass
            await socket.send(json.dumps({"type": "text", "text": "x" * 101}))
            await socket.send(json.dumps({"type": "end"}))
            while json.loads(await socket.recv())["type"] != "done":
                pass
        async with connect(
            f"{ws}/v1/transcribe/ws", additional_headers={"authorization": "Bearer bob-token"}
        ) as s:
            await s.recv()  # bob may not transcribe: refused, then closed
    lines = [json.loads(line) for line in (policy_file.parent / "audit.log").read_text().splitlines()]
    seen = [(r["principal"], r["tool"], r["decision"], r.get("code"), r.get("transport")) for r in lines]
    assert seen == [
        ("alice", "speak", "allow", None, "http"),
        ("alice", "speak", "deny", "policy_denied", "http"),
        ("-", "list_voices", "deny", "unauthorized", "http"),
        ("alice", "speak", "allow", None, "ws"),
        ("alice", "speak", "deny", "text_too_long", "ws"),
        ("bob", "transcribe", "deny", "forbidden", "ws"),
    ]
    assert lines[0]["chars"] == len("Hello there.") and lines[0]["audio_seconds"] > 0
    assert lines[3]["chars"] == len("One more.") and lines[3]["audio_seconds"] > 0
    assert "codes please" not in (policy_file.parent / "audit.log").read_text()  # never the text
