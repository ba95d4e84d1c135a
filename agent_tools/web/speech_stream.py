"""`POST /v1/speak/stream`: speech as server-sent events, first audio after the first sentence.

Events: `mark` (a sentence, where its audio starts), `audio` (its base64 PCM16), then `done` (what
was delivered), or `error` (the contract's error object, with the request's id) in place of `done`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from agent_tools.core.errors import error_body
from agent_tools.core.outputs import SpeechFrames
from agent_tools.core.requests import SpeakRequest
from agent_tools.core.runtime import Runtime
from agent_tools.web.route_boundary import ApiRoute, json_body, on_response_end, principal


class SpeechStreamRoute:
    """The streaming speech route over one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def api(self) -> list[ApiRoute]:
        """The route, with the tool its audit lines name."""
        return [ApiRoute("/v1/speak/stream", "POST", self.speak_stream, "speak")]

    async def speak_stream(self, request: Request) -> Response:
        """Speech as SSE: `mark` and `audio` per sentence, then `done`; or `error`."""
        who = principal(request)
        body = SpeakRequest.model_validate(await json_body(request))
        request.state.chars = len(body.text)
        streams = self.runtime.streams
        frames = SpeechFrames(body.sample_rate)  # the utterance is timed from here, its checks included
        plan = await streams.start(
            body.text, voice=body.voice, speed=body.speed, principal=who, cost=frames.cost
        )
        on_response_end(request, plan.slot.release)
        request_id = request.state.request_id

        async def events() -> AsyncIterator[dict[str, str]]:
            async with streams.frames(plan, frames, "speak_stream") as receive:
                async for item in receive:
                    if isinstance(item, Exception):
                        request.state.stream_error = item
                        yield {"event": "error", "data": json.dumps(error_body(item, request_id))}
                        return
                    yield {"event": "mark", "data": json.dumps({"type": "sentence", **item.mark()})}
                    yield {"event": "audio", "data": json.dumps(item.audio())}
                    frames.sent(item)
                    request.state.audio_seconds = frames.audio_seconds
            yield {"event": "done", "data": json.dumps(frames.summary())}

        return EventSourceResponse(events(), ping=15)
