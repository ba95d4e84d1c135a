"""JSON from a client, parsed with the same refusals on every surface."""

from __future__ import annotations

import json
from typing import Any

from speech_backend import InvalidArgument


def parse_json(data: str | bytes, what: str = "the request body", fix: str = "send a JSON object") -> Any:
    """The JSON value of `data` (`what` names it in the message, `fix` says what to send instead).

    Raises:
        InvalidArgument: not JSON, or nested too deeply to parse (never a RecursionError).
    """
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise InvalidArgument(f"{what} nests JSON too deeply; send a flat object") from exc
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON; {fix}") from exc
