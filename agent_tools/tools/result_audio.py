"""Client side: the audio a `speak` result carries, inline or behind its `audio://` link."""

from __future__ import annotations

import base64

from mcp import Client
from mcp.types import AudioContent, CallToolResult


async def result_audio(client: Client, result: CallToolResult) -> bytes | None:
    """The audio of a result: inline when it came inline, else read through its audio:// link."""
    inline = next((c for c in result.content if isinstance(c, AudioContent)), None)
    if inline is not None:
        return base64.b64decode(inline.data)
    uri = (result.structured_content or {}).get("audio_uri")
    if not uri:
        return None
    read = await client.read_resource(uri)
    blob = getattr(read.contents[0], "blob", None)
    return base64.b64decode(blob) if blob else None
