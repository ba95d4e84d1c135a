"""The agent surface as the eval runner sees it: MCP tools through `mcp.Client` over streamable
HTTP, and streamed voice turns over `/v1/speak/ws`, each timed."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import numpy as np
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_tools.tools.client_results import result_audio, result_error
from speech_backend import Audio, encode_audio


@dataclass
class Outcome:
    """What one call produced."""

    ok: bool
    code: str | None = None
    message: str = ""
    structured: dict[str, Any] = field(default_factory=dict)
    audio: bytes | None = None
    latency_s: float = 0.0
    first_audio_s: float | None = None


class EvalClient:
    """One MCP connection (and the base URL for the streaming routes) with an optional bearer token."""

    def __init__(self, client: Client, base_url: str, token: str | None) -> None:
        self.client = client
        self.base_url = base_url
        self.token = token

    @classmethod
    @asynccontextmanager
    async def connect(cls, base_url: str, token: str | None = None) -> AsyncIterator[EvalClient]:
        """Connect to the server at `base_url` (its `/mcp` endpoint)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http,
            Client(
                streamable_http_client(f"{base_url}/mcp", http_client=http, max_sse_event_size=None)
            ) as client,
        ):
            yield cls(client, base_url, token)

    async def call(self, tool: str, arguments: dict[str, Any]) -> Outcome:
        """Call a tool; an error result becomes a failed outcome with its code."""
        started = time.perf_counter()
        result = await self.client.call_tool(tool, {k: v for k, v in arguments.items() if v is not None})
        latency = time.perf_counter() - started
        structured = result.structured_content or {}
        error = result_error(result)
        if error is not None:
            code, message = str(error["code"]), str(error["message"])
            return Outcome(False, code, message, {"error": error}, latency_s=latency)
        return Outcome(
            True, structured=structured, audio=await result_audio(self.client, result), latency_s=latency
        )

    async def stream(
        self, text: str, pieces: int, voice: str | None, speed: float | None, cancel_after: int | None
    ) -> Outcome:
        """A voice turn over `/v1/speak/ws`: text in `pieces`, audio back as it is made; barge in
        after `cancel_after` sentences when given. The audio comes back as WAV."""
        query = "&".join(f"{k}={v}" for k, v in (("voice", voice), ("speed", speed)) if v is not None)
        url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/v1/speak/ws"
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        started = time.perf_counter()
        first: float | None = None
        pcm: list[bytes] = []
        rate = 22050
        async with connect(f"{url}?{query}" if query else url, additional_headers=headers) as ws:
            try:
                ready = json.loads(await ws.recv())
                if ready["type"] == "error":
                    return Outcome(
                        False, ready["code"], ready["message"], latency_s=time.perf_counter() - started
                    )
                for piece in split_pieces(text, pieces):
                    await ws.send(json.dumps({"type": "text", "text": piece}))
                await ws.send(json.dumps({"type": "end"}))
                error: dict[str, Any] | None = None
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "audio":
                        first = first if first is not None else time.perf_counter() - started
                        pcm.append(base64.b64decode(event["pcm16"]))
                        rate = event["sample_rate"]
                        if cancel_after is not None and len(pcm) == cancel_after:
                            await ws.send(json.dumps({"type": "cancel"}))
                    elif event["type"] == "error":
                        error = event
                    elif event["type"] == "done":
                        break
            except ConnectionClosed as exc:
                return Outcome(False, "connection_closed", str(exc), latency_s=time.perf_counter() - started)
        latency = time.perf_counter() - started
        samples = (np.frombuffer(b"".join(pcm), dtype="<i2") / 32768).astype(np.float32)
        audio = encode_audio(Audio(samples, rate), "wav") if len(samples) else None
        if error is not None:
            return Outcome(False, error["code"], error["message"], event, audio, latency, first)
        done = {**event, "voice": ready.get("voice")}
        return Outcome(True, structured=done, audio=audio, latency_s=latency, first_audio_s=first)


def split_pieces(text: str, pieces: int) -> list[str]:
    """`text` cut at spaces into about `pieces` parts that join back to it exactly."""
    words = text.split(" ")
    size = max(1, -(-len(words) // pieces))
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p + " " for p in parts[:-1]] + parts[-1:]
