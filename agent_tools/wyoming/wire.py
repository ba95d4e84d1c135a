"""Wyoming events read within bounds: a JSON header line, then the data and payload it declares.
The declared lengths are checked before anything is read, so a client cannot make the server hold
more than one bounded event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

from speech_backend import InvalidArgument, PayloadTooLarge


class ClientGone(Exception):
    """The client closed the connection."""


MAX_HEADER_BYTES = 64 * 1024  # the header line (the reader's own limit)
MAX_DATA_BYTES = 256 * 1024  # an event's JSON data (text to speak is capped far below it)
MAX_PAYLOAD_BYTES = 1024 * 1024  # one audio chunk (Home Assistant sends ~2 KB)


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None when the client has closed.

    Raises:
        PayloadTooLarge: a header, data or payload over its bound.
        InvalidArgument: a header that is not a Wyoming event.
    """
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise PayloadTooLarge(
            f"an event header is over {MAX_HEADER_BYTES} bytes; send smaller events"
        ) from exc
    if not line:
        return None
    header = _json(line, "the event header")
    kind, data = header.get("type"), header.get("data") or {}
    data_length, payload_length = header.get("data_length") or 0, header.get("payload_length") or 0
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise InvalidArgument("an event header needs a string `type` and an object `data`")
    for name, value in (("data_length", data_length), ("payload_length", payload_length)):
        if not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{name} must be a whole number of bytes")
    if data_length > MAX_DATA_BYTES:
        raise PayloadTooLarge(f"an event's data is {data_length} bytes, over {MAX_DATA_BYTES}")
    if payload_length > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"an event's payload is {payload_length} bytes, over {MAX_PAYLOAD_BYTES}")
    try:
        if data_length:
            data.update(_json(await reader.readexactly(data_length), "the event data"))
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the client left midway
    return Event(type=kind, data=data, payload=payload)


def _json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} is not a JSON object")
    return value
