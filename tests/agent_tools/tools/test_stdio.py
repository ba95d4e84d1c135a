"""The server as an MCP client host launches it: a stdio subprocess whose stdout is only JSON-RPC."""

from __future__ import annotations

import os
import sys
import tempfile

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


async def test_speak_and_transcribe_over_stdio_with_logs_on_stderr_only(cache_dir):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent_tools", "serve", "--transport", "stdio"],
        env={
            **os.environ,
            "SPEECH_TOOLS_ENGINES__CACHE_DIR": str(cache_dir),
            "SPEECH_TOOLS_LOG_LEVEL": "DEBUG",
            "SPEECH_TOOLS_SERVICE__DETERMINISTIC_SPEECH": "true",
        },
    )
    text = (
        "Standard input and output carry only the protocol. "
        "Every log line goes to the error stream, and the client reads clean messages."
    )
    with tempfile.TemporaryFile("w+") as errlog:
        with anyio.fail_after(120):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                spoken = await client.call_tool("speak", {"text": text})
                heard = await client.call_tool(
                    "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
                )
                bad = await client.call_tool("speak", {"text": ""})
        errlog.seek(0)
        log = errlog.read()
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.10
    assert tool_error(bad)["code"] == "invalid_argument"
    assert '"msg": "models loaded; ready"' in log
    assert text not in log and heard.structured_content["text"] not in log


async def test_the_policy_holds_over_stdio_for_the_local_principal(cache_dir, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: me\naudit:\n  path: audit.log\nprincipals:\n"
        "  - id: me\n    tools: [speak, list_voices]\n    max_text_chars: 30\n"
        "content:\n  blocked_patterns:\n    - id: no-passwords\n      pattern: password\n"
    )
    env = {
        **os.environ,
        "SPEECH_TOOLS_ENGINES__CACHE_DIR": str(cache_dir),
        "SPEECH_TOOLS_POLICY_FILE": str(policy),
    }
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "agent_tools", "serve", "--transport", "stdio"], env=env
    )
    with tempfile.TemporaryFile("w+") as errlog:
        with anyio.fail_after(120):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                long = await client.call_tool(
                    "speak", {"text": "This sentence is longer than thirty characters."}
                )
                secret = await client.call_tool("speak", {"text": "My password is hunter2"})
                heard = await client.call_tool("transcribe", {"audio_base64": "AAAA"})
                ok = await client.call_tool("speak", {"text": "Short and fine."})
    assert tool_error(long)["code"] == "text_too_long"
    assert tool_error(secret)["rule"] == "no-passwords"
    assert tool_error(heard)["code"] == "forbidden"
    assert not ok.is_error
    audit = (tmp_path / "audit.log").read_text()
    assert audit.count('"principal":"me"') == 4 and "hunter2" not in audit
