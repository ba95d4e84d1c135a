"""langchain-mcp-adapters, with its default settings, against a speech-tools server: load the
tools, speak, transcribe what was spoken, and make a typed error. Prints one JSON object.

    python langchain_adapters_session.py http://127.0.0.1:8000/mcp
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient


async def main(url: str) -> dict[str, Any]:
    client = MultiServerMCPClient({"speech": {"transport": "streamable_http", "url": url}})
    tools = {tool.name: tool for tool in await client.get_tools()}

    async def call(name: str, args: dict[str, Any]) -> ToolMessage:
        message = await tools[name].ainvoke({"type": "tool_call", "id": "1", "name": name, "args": args})
        assert isinstance(message, ToolMessage)
        return message

    spoken = await call("speak", {"text": "The parcel arrives on Thursday."})
    meta = spoken.artifact["structured_content"] if spoken.artifact else {}
    heard = await call("transcribe", {"audio_uri": meta.get("audio_uri")})
    refused = await call("speak", {"text": "Hello.", "voice": "nope"})
    return {
        "tools": sorted(tools),
        "speak": {
            "status": spoken.status,
            "structured": meta,
            "blocks": [b.get("type") for b in spoken.content],
        },
        "transcribe": {
            "status": heard.status,
            "text": heard.artifact["structured_content"]["text"] if heard.artifact else None,
        },
        "error": {"status": refused.status, "content": str(refused.content)},
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
