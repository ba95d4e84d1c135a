"""LangChain tools: the same schemas, policies and error codes as MCP, in-process and remote."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest
from langchain_core.messages import ToolMessage
from mcp import Client

from agent_tools.tools.langchain import speech_tools
from agent_tools.tools.server import build_server
from tests.agent_tools.conftest import serve_http
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = [pytest.mark.anyio, pytest.mark.clients]
ROOT = Path(__file__).resolve().parents[3]
BAD_CALLS = [
    ("speak", {"text": ""}),
    ("speak", {"text": "hi", "voice": "../../etc/passwd"}),
    ("speak", {"text": "x" * 5001}),
    ("transcribe", {"audio_base64": "not base64!"}),
    ("transcribe", {"audio_uri": "file:///etc/passwd"}),
]


async def call(tool, args: Mapping[str, object], call_id: str = "1") -> ToolMessage:
    message = await tool.ainvoke({"type": "tool_call", "id": call_id, "name": tool.name, "args": args})
    assert isinstance(message, ToolMessage)
    return message


async def test_the_tools_have_the_mcp_names_and_input_schemas(runtime):
    tools = await speech_tools(runtime)
    async with Client(build_server(runtime)) as client:
        mcp_tools = {t.name: t for t in (await client.list_tools()).tools}
    assert sorted(t.name for t in tools) == sorted(mcp_tools)
    for tool in tools:
        assert tool.args_schema == mcp_tools[tool.name].input_schema


async def test_speak_puts_audio_in_the_artifact_not_the_message_and_transcribe_hears_it(runtime, tmp_path):
    tools = {t.name: t for t in await speech_tools(runtime, audio_dir=tmp_path)}
    text = (
        "Agents should never see raw audio in their context window. "
        "They read the text and keep the sound somewhere else."
    )
    spoken = await call(tools["speak"], {"text": text})
    assert spoken.status == "success" and len(str(spoken.content)) < 2000
    assert spoken.artifact["audio"][:4] == b"RIFF"
    assert await anyio.Path(spoken.artifact["audio_path"]).read_bytes() == spoken.artifact["audio"]
    uri = json.loads(str(spoken.content))["audio_uri"]
    heard = await call(tools["transcribe"], {"audio_uri": uri}, "2")
    assert normalized_wer([text], [json.loads(str(heard.content))["text"]]) <= 0.10


async def test_bad_inputs_give_the_same_error_codes_as_mcp(runtime):
    tools = {t.name: t for t in await speech_tools(runtime)}
    async with Client(build_server(runtime)) as client:
        for name, args in BAD_CALLS:
            mcp_error = tool_error(await client.call_tool(name, args))["code"]
            message = await call(tools[name], args)
            assert message.status == "error"
            assert str(message.content).startswith(f"[{mcp_error}] "), (name, args, message.content)


async def test_remote_tools_over_http_carry_the_bearer_token_and_the_policy(settings, tmp_path):
    from policies import token_hash
    from tests.agent_tools.web.test_policy_http import fake_runtime, policy_file  # noqa: F401

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: a\nprincipals:\n  - id: a\n"
        f"    token_sha256: [{token_hash('a-token')}]\n    tools: [list_voices]\n"
    )
    runtime, _ = fake_runtime(settings, policy)
    async with serve_http(runtime) as base:
        tools = {t.name: t for t in await speech_tools(f"{base}/mcp", token="a-token")}
        listed = await call(tools["list_voices"], {})
        refused = await call(tools["speak"], {"text": "hi"})
    assert json.loads(str(listed.content))["voices"][0]["id"] == "fake-tone"
    assert refused.status == "error" and str(refused.content).startswith("[forbidden] ")


def test_the_example_agent_loop_runs_and_hears_what_it_said():
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langchain_agent.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "thursday" in done.stdout.lower()
