"""`/v1/transcribe/ws`: live transcription of a stream of PCM16 frames, over the core's live session.

The client opens the socket with the frames' `sample_rate` (and optionally `language`, the
endpointing thresholds and `partial_interval_ms`) as query parameters, then sends binary frames of
mono little-endian PCM16, and `{"type": "end"}` when the stream is over. `{"type": "commit"}` ends the
open utterance where it is (with `turn_detection=manual`, utterances end only there) and
`{"type": "clear"}` drops it unheard (answered by `cleared`). The server sends `ready`;
per utterance `speech_started`, `partial` (re-decoded every `partial_interval_ms` of new audio),
`speech_stopped` and `final` (text, words with stream times, language), or `error` naming the
utterance when its final could not be made (`busy`: no recognition slot in time); and `done` after
`end`. A client silent for the socket timeout, with no final owed, is closed with `timeout`; a stream
refused midway (the caller's audio cap, say) gets the finals of what came before, then the error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent_tools.core.live import open_live
from agent_tools.core.live_input import Control
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.runtime import Runtime
from agent_tools.web.sockets import SocketRoute, SocketSession
from policies import Principal


class ControlMessage(BaseModel):
    """`end`: the stream is over (finish the open utterance, say `done`); `commit`: end the open
    utterance here; `clear`: drop it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["end", "commit", "clear"]


class TranscribeSocket:
    """The `/v1/transcribe/ws` endpoint."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def socket(self) -> SocketRoute:
        """The route: one stream per connection, transcribed until it ends or the client leaves."""
        return SocketRoute("/v1/transcribe/ws", "transcribe", self._session)

    async def _session(self, session: SocketSession, principal: Principal | None) -> None:
        params = LiveSettings.model_validate(dict(session.websocket.query_params))
        live = await open_live(self.runtime.service, params, principal, session.send, session.request_id)
        await session.send(live.ready())

        async def receive() -> bytes | Control | None:
            # a client waiting for the final of a turn it ended is not idle
            frame = await session.receive(
                'stream PCM16 frames, or send {"type": "end"}', lambda: not live.owes_results
            )
            if isinstance(frame, bytes):
                return frame
            kind = ControlMessage.model_validate_json(frame).type
            return None if kind == "end" else Control(kind)

        try:
            await live.run(receive)
        finally:
            session.audio_seconds = live.received_seconds
