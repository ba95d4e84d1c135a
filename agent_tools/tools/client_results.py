"""Client side: the audio a `speak` result carries (inline or behind its `audio://` link), and the
error object an error result carries in its `_meta`."""

from __future__ import annotations

import base64
from typing import Any

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


ERROR_META = "speech-tools/error"  # the `_meta` key of an error result's error object


def result_error(result: CallToolResult) -> dict[str, Any] | None:
    """The contract's error object of an error result (code, message, retryable, request_id, ...),
    or None for a success."""
    if not result.is_error:
        return None
    error = (result.meta or {}).get(ERROR_META)
    return dict(error) if isinstance(error, dict) else {"code": "unknown", "message": result_text(result)}


def result_text(result: CallToolResult) -> str:
    """The text blocks of a result, joined."""
    return " ".join(getattr(c, "text", "") for c in result.content).strip()
