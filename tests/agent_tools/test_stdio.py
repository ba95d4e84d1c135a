"""The server as an MCP client host launches it: a stdio subprocess whose stdout is only JSON-RPC."""

from __future__ import annotations

import os
import sys
import tempfile

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

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
        },
    )
    text = "Standard input and output carry only the protocol."
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
    assert bad.structured_content["error"]["code"] == "invalid_argument"
    assert '"msg": "models loaded; ready"' in log
    assert text not in log and heard.structured_content["text"] not in log
