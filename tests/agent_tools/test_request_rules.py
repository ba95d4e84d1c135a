"""One rule, one message: the same bad `speak` request gets the same code and the same words from
every speech surface (MCP `speak`, `/v1/audio/speech`, `/v1/speak/stream`, `/v1/speak/ws`), because
each maps into core's request types rather than writing the bound again."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from mcp import Client
from websockets.asyncio.client import connect

from agent_tools.core.requests import MAX_SPEED, MIN_SPEED, rule_message
from tests.agent_tools.conftest import runtime_with, serve_http
from tests.agent_tools.web.test_sockets import receive, ws_url
from tests.typed import tool_error

pytestmark = pytest.mark.anyio

MAX_CHARS = 60
LONG = "This sentence is here to run past the limit of characters. " * 2
CASES: dict[str, dict[str, Any]] = {
    "speed": {"speed": 3.0},
    "slow": {"speed": 0.1},
    "sample_rate": {"sample_rate": 7999},
    "voice": {"voice": "no-such-voice"},
    "empty voice": {"voice": ""},
    "text": {"text": LONG},
}


async def over_mcp(base: str, fields: dict[str, Any]) -> tuple[str, str]:
    async with Client(f"{base}/mcp") as client:
        result = await client.call_tool("speak", {"text": "Hello there.", **fields})
    error = tool_error(result)
    return str(error["code"]), str(error["message"])


async def over_openai(base: str, fields: dict[str, Any]) -> tuple[str, str]:
    body = {"model": "tts-1", "input": fields.pop("text", "Hello there."), **fields}
    async with httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(f"{base}/v1/audio/speech", json=body)
    error = response.json()["error"]
    return error["code"], error["message"]


async def over_sse(base: str, fields: dict[str, Any]) -> tuple[str, str]:
    async with httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(f"{base}/v1/speak/stream", json={"text": "Hello there.", **fields})
    error = response.json()["error"]
    return error["code"], error["message"]


async def over_socket(base: str, fields: dict[str, Any]) -> tuple[str, str]:
    text = fields.pop("text", "Hello there.")
    query = urlencode({k: v for k, v in fields.items()})
    async with connect(ws_url(base, f"/v1/speak/ws?{query}")) as ws:
        first = await receive(ws)
        if first["type"] == "ready":  # the parameters were taken: the text is what is refused
            await ws.send(json.dumps({"type": "text", "text": text}))
            await ws.send(json.dumps({"type": "end"}))
            first = await receive(ws)
    assert first["type"] == "error", first
    return first["code"], first["message"]


SURFACES = {"mcp": over_mcp, "openai": over_openai, "sse": over_sse, "socket": over_socket}


async def test_the_same_bad_request_gets_the_same_code_and_message_on_every_surface(service, settings):
    runtime = runtime_with(service, settings, max_text_chars=MAX_CHARS)
    answers: dict[str, dict[str, tuple[str, str]]] = {}
    async with serve_http(runtime) as base:
        for case, fields in CASES.items():
            answers[case] = {name: await ask(base, dict(fields)) for name, ask in SURFACES.items()}
    for case, by_surface in answers.items():
        assert len(set(by_surface.values())) == 1, (case, by_surface)
    assert answers["speed"]["mcp"] == (
        "invalid_argument",
        f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g} (got 3)",
    )
    assert answers["slow"]["mcp"][1] == "speed must be between 0.5 and 2 (got 0.1)"
    assert answers["sample_rate"]["mcp"] == (
        "invalid_argument",
        "sample_rate must be between 8000 and 48000 (got 7999)",
    )
    assert answers["voice"]["mcp"][0] == "voice_not_found" and "list_voices" in answers["voice"]["mcp"][1]
    assert answers["empty voice"]["mcp"] == ("invalid_argument", "voice must not be empty")
    code, message = answers["text"]["mcp"]
    assert code == "text_too_long" and f"limit of {MAX_CHARS}" in message and LONG not in message


def test_a_rule_names_the_field_and_never_the_text():
    from pydantic import ValidationError

    from agent_tools.core.requests import SpeakRequest

    with pytest.raises(ValidationError) as info:
        SpeakRequest.model_validate({"text": 42, "tone": "secret words"})
    messages = [rule_message(error) for error in info.value.errors()]
    assert messages == ["text must be a string", "tone is not a field this request takes"]
