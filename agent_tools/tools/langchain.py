"""LangChain tools over the same MCP surface: the same schemas, policies and error codes.

The only module that imports `langchain_core`. Tools call the MCP server (in-process, or a
remote one over streamable HTTP); audio goes to the tool artifact (and optionally a file), never
as base64 into the model's message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.types import Tool

from agent_tools.core.runtime import Runtime
from agent_tools.tools.client_results import result_audio, result_text
from agent_tools.tools.server import build_server

Target = Runtime | MCPServer | str


@asynccontextmanager
async def _connect(target: Runtime | MCPServer | str, token: str | None) -> AsyncIterator[Client]:
    if isinstance(target, Runtime):
        target = build_server(target)
    if isinstance(target, MCPServer):
        async with Client(target) as client:
            yield client
        return
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http,
        Client(streamable_http_client(target, http_client=http, max_sse_event_size=None)) as client,
    ):
        yield client


async def speech_tools(
    target: Target, *, token: str | None = None, audio_dir: Path | None = None
) -> list[BaseTool]:
    """LangChain tools for every MCP tool of `target`: a `Runtime` (in-process) or an `/mcp` URL.

    Args:
        target: the runtime to serve in-process, an `MCPServer`, or a remote server's `/mcp` URL.
        token: bearer token for a remote server whose policy requires one.
        audio_dir: when given, `speak` also writes its audio here and names the file in the artifact.
    """
    server = build_server(target) if isinstance(target, Runtime) else target
    async with _connect(server, token) as client:
        listed = await client.list_tools()
    return [_tool(server, tool, token, audio_dir) for tool in listed.tools]


def _tool(target: MCPServer | str, tool: Tool, token: str | None, audio_dir: Path | None) -> BaseTool:
    async def call(**arguments: Any) -> tuple[str, dict[str, Any]]:
        async with _connect(target, token) as client:
            result = await client.call_tool(tool.name, arguments)
            audio = None if result.is_error else await result_audio(client, result)
        if result.is_error:  # raised outside the client's task group, so LangChain sees a ToolException
            raise ToolException(result_text(result))
        artifact: dict[str, Any] = {"structured_content": result.structured_content}
        if audio is not None:
            artifact["audio"] = audio
            if audio_dir is not None:
                meta = result.structured_content or {}
                path = audio_dir / str(meta.get("audio_uri", "audio://speech.wav")).removeprefix("audio://")
                path.write_bytes(audio)
                artifact["audio_path"] = str(path)
        return json.dumps(result.structured_content), artifact

    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return StructuredTool(
        name=tool.name,
        description=tool.description or "",
        args_schema=tool.input_schema,
        coroutine=call,
        response_format="content_and_artifact",
        handle_tool_error=True,
        metadata=annotations,
    )
