"""The TypeScript MCP SDK and MCP Inspector's CLI — what most MCP hosts are built on — against the
server, installed by `make test` into clients/typescript (npm ci)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.agent_tools.conftest import serve_http
from tests.wer import normalized_wer

pytestmark = [pytest.mark.anyio, pytest.mark.clients]
CLIENTS = Path(__file__).resolve().parents[3] / "clients" / "typescript"
SPOKEN = "The parcel arrives on Thursday."


@pytest.fixture(scope="module")
def node_clients() -> Path:
    assert (CLIENTS / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir(), (
        "the TypeScript clients are not installed: run `make test` (it runs npm ci in clients/typescript)"
    )
    return CLIENTS


async def node(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = await anyio.run_process(
        ["node", *args], cwd=folder, check=False, env={**os.environ, **(env or {})}
    )
    return done.returncode, done.stdout.decode()


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_the_typescript_sdk_speaks_reads_transcribes_and_sees_typed_errors(
    runtime, node_clients, transport
):
    async with serve_http(runtime) as base:
        url = f"{base}/mcp" if transport == "streamable" else f"{base}/sse"
        code, stdout = await node(node_clients, "mcp_session.mjs", url, transport)
    assert code == 0, stdout
    out: dict[str, Any] = json.loads(stdout)
    assert out["tools"] == ["list_voices", "speak", "transcribe"]
    assert not out["speak"]["isError"] and out["speak"]["structured"]["synthetic"] is True
    assert out["read"] == {"mimeType": "audio/wav", "bytes": out["speak"]["structured"]["bytes"]}
    assert normalized_wer([SPOKEN], [out["transcribe"]["structured"]["text"]]) <= 0.15
    for expected, seen in out["errors"].items():
        # the SDK validates structured content against the output schema even on errors: an
        # error result must reach the host as a result, with its code, not as a thrown McpError
        assert "thrown" not in seen, seen
        assert seen["isError"] and seen["structured"] is None
        assert seen["text"].startswith(f"[{expected}] ")
        assert seen["meta"]["speech-tools/error"]["code"] == expected


async def test_the_inspector_cli_shows_a_typed_error_and_a_result(runtime, node_clients, tmp_path):
    cli = str(node_clients / "node_modules" / ".bin" / "mcp-inspector")
    env = {"MCP_CATALOG_PATH": str(tmp_path / "catalog.json"), "HOME": str(tmp_path)}
    async with serve_http(runtime) as base:
        url = f"{base}/mcp"
        _, refused = await node(
            node_clients,
            cli,
            "--cli",
            url,
            "--method",
            "tools/call",
            "--tool-name",
            "speak",
            "--tool-arg",
            "text=Hello.",
            "voice=nope",
            env=env,
        )
        code, listed = await node(node_clients, cli, "--cli", url, "--method", "tools/list", env=env)
    result, _ = json.JSONDecoder().raw_decode(refused)  # then a line saying the tool returned isError
    assert result["isError"] is True and "structuredContent" not in result
    assert result["content"][0]["text"].startswith("[voice_not_found] ")
    assert code == 0 and [t["name"] for t in json.loads(listed)["tools"]] == [
        "speak",
        "transcribe",
        "list_voices",
    ]
