"""`/v1/realtime?intent=transcription`: OpenAI's Realtime transcription sessions, translated onto the
core's live transcription (the same one `/v1/transcribe/ws` serves, with the same guard and caps).

Client events: `session.update` (the session shape in `realtime_session`), `input_audio_buffer.append`
(base64 PCM16 at the session's rate), `input_audio_buffer.commit` (end the turn here; with
`turn_detection: null` turns end only there) and `input_audio_buffer.clear`. Server events:
`session.created` on connect, `session.updated`, `input_audio_buffer.speech_started|speech_stopped`
(server VAD), `input_audio_buffer.committed`, `input_audio_buffer.cleared`,
`conversation.item.input_audio_transcription.delta` (partials as they extend the text already sent,
then the rest) and `.completed` (the final transcript, its audio seconds as usage) or `.failed` (no
transcript: `error.code` says why, `busy` when no recognition slot came in time), and `error`:
`{"type": "error", "error": {"type", "code", "message", "param", "event_id", "retryable", ...}}`
with our stable codes. A bad event is answered with an error and the session goes on; a refusal
(token, policy, the caller's audio cap) is answered with an error and closes the socket with the
code every socket uses (4000 + HTTP status), after the transcripts of the turns heard before it. A
session waiting for a committed turn's transcript is not idle, however long it takes.

A `session.update` applies from the next appended audio on, at any time: audio already appended and
not yet committed stays in the buffer (an open turn goes on under the new settings).
"""

from __future__ import annotations

import base64
import binascii
import copy
import secrets
from collections import deque
from typing import Any

from pydantic import ValidationError

from agent_tools.core.errors import error_body, http_status
from agent_tools.core.json_input import parse_json
from agent_tools.core.live import LiveTranscription, open_live, segmenter_for
from agent_tools.core.live_input import NOTHING_TO_COMMIT, Control
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.runtime import Runtime
from agent_tools.web.realtime_session import RealtimeSession, SessionUpdate
from agent_tools.web.sockets import SocketRoute, SocketSession, typed
from policies import Principal
from speech_backend import BackendUnavailable, InvalidArgument

MAX_EVENT_BYTES = 1024 * 1024  # an append of ~15 s of 24 kHz audio, base64
FRAME_SECONDS = 0.5  # appended audio is fed to the core in pieces this long
IDLE = "send input_audio_buffer.append events (or close the connection)"


COMMIT_EMPTY = "input_audio_buffer_commit_empty"


def openai_error(body: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """The contract's error object in OpenAI's error event."""
    kind = "server_error" if http_status(body["code"]) >= 500 else "invalid_request_error"
    return {
        "type": "error",
        "event_id": f"event_{secrets.token_hex(8)}",
        "error": {"type": kind, "param": None, "event_id": event_id, **body},
    }


def commit_empty(message: str, request_id: str, event_id: object = None) -> dict[str, Any]:
    """A commit with less than 100 ms in the buffer: an `invalid_argument` under OpenAI's own code."""
    event = openai_error(
        error_body(InvalidArgument(message), request_id), event_id if isinstance(event_id, str) else None
    )
    event["error"]["code"] = COMMIT_EMPTY
    return event


class RealtimeSocket:
    """The `/v1/realtime` endpoint (transcription intent)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def socket(self) -> SocketRoute:
        """The route: a transcription session in OpenAI's events (its error shape, its larger frames)."""
        return SocketRoute(
            "/v1/realtime",
            "transcribe",
            self._session,
            max_text_frame=MAX_EVENT_BYTES,
            error_event=openai_error,
        )

    async def _session(self, session: SocketSession, principal: Principal | None) -> None:
        if session.websocket.query_params.get("intent") != "transcription":
            raise InvalidArgument(
                "only transcription sessions are served here: connect to /v1/realtime?intent=transcription"
            )
        await RealtimeConnection(self.runtime, session, principal).run()


class RealtimeConnection:
    """One transcription session: OpenAI's events in and out, the core's live transcription between."""

    def __init__(self, runtime: Runtime, session: SocketSession, principal: Principal | None) -> None:
        self.runtime = runtime
        self.socket = session
        self.principal = principal
        self.session = RealtimeSession(f"sess_{secrets.token_hex(8)}")
        self.live: LiveTranscription | None = None
        self.settings: LiveSettings = self.session.live()
        self.pending: deque[bytes | Control | LiveSettings] = deque()  # in the order they came
        self.items: dict[int, str] = {}  # utterance -> item id
        self.sent: dict[int, str] = {}  # utterance -> transcript text sent as deltas
        self.last_item: str | None = None

    async def run(self) -> None:
        """Configure, then transcribe from the first audio until the client leaves."""
        await self._send("session.created", session=self.session.describe())
        while not self.pending:  # settings may change until audio arrives
            await self._next()
        self.live = await open_live(
            self.runtime.service, self.settings, self.principal, self._emit, self.socket.request_id
        )
        try:
            await self.live.run(self._receive)
        finally:
            self.socket.audio_seconds = self.live.received_seconds

    async def _receive(self) -> bytes | Control | LiveSettings:
        while not self.pending:
            await self._next()
        return self.pending.popleft()

    async def _next(self) -> None:
        """Read one client event: queue its audio or control, or answer it."""
        # a client waiting for the transcript of a turn it committed is not idle
        frame = await self.socket.receive(IDLE, lambda: self.live is None or not self.live.owes_results)
        event_id: str | None = None
        try:
            if isinstance(frame, bytes):
                raise InvalidArgument("send JSON text events; audio goes base64 in input_audio_buffer.append")
            event = parse_json(frame, "an event", "send one JSON object per message")
            if not isinstance(event, dict):
                raise InvalidArgument("an event must be a JSON object with a type")
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            await self._handle(str(event.get("type")), event)
        except (InvalidArgument, ValidationError) as exc:  # the session goes on
            await self.socket.send(openai_error(error_body(typed(exc), self.socket.request_id), event_id))

    async def _handle(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "input_audio_buffer.append":
            self._append(event.get("audio"))
        elif kind == "input_audio_buffer.commit":
            if self.live is None and not self.pending:
                await self.socket.send(
                    commit_empty(NOTHING_TO_COMMIT, self.socket.request_id, event.get("event_id"))
                )
                return
            self.pending.append(Control.COMMIT)
        elif kind == "input_audio_buffer.clear":
            if self.live is None:
                await self._send("input_audio_buffer.cleared")
            else:
                self.pending.append(Control.CLEAR)
        elif kind == "session.update":
            await self._update(event.get("session"))
        else:
            raise InvalidArgument(
                f"event type {kind!r} is not served: a transcription session takes session.update and "
                "input_audio_buffer.append, commit and clear"
            )

    def _append(self, audio: object) -> None:
        if not isinstance(audio, str):
            raise InvalidArgument("input_audio_buffer.append needs audio: base64 of PCM16 samples")
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument("input_audio_buffer.append: audio is not valid base64") from exc
        if len(pcm) % 2:
            raise InvalidArgument(
                "input_audio_buffer.append: an odd number of bytes; send whole PCM16 samples"
            )
        step = int(self.settings.sample_rate * FRAME_SECONDS) * 2
        self.pending.extend(pcm[i : i + step] for i in range(0, len(pcm), step))

    async def _update(self, raw: object) -> None:
        update = SessionUpdate.model_validate(raw if raw is not None else {})
        trial = copy.copy(self.session)
        settings = trial.updated(update)
        try:
            segmenter_for(self.runtime.service, settings)  # the engines here serve them
        except BackendUnavailable as exc:  # a feature not served here: the session goes on without it
            await self.socket.send(openai_error(error_body(exc, self.socket.request_id)))
            return
        self.session, self.settings = trial, settings
        if self.live is not None:  # from the next audio on
            self.pending.append(settings)
        await self._send("session.updated", session=self.session.describe())

    async def _send(self, kind: str, **fields: Any) -> None:
        await self.socket.send({"type": kind, "event_id": f"event_{secrets.token_hex(8)}", **fields})

    async def _emit(self, event: dict[str, Any]) -> None:
        """The core's live events as OpenAI's."""
        kind = event["type"]
        n = event.get("utterance", 0)
        vad = self.live is not None and self.live.params.turn_detection != "manual"
        if kind == "speech_started":
            self.items[n] = f"item_{secrets.token_hex(8)}"
            if vad:
                ms = round(event["start"] * 1000)
                await self._send(
                    "input_audio_buffer.speech_started", audio_start_ms=ms, item_id=self.items[n]
                )
        elif kind == "speech_stopped":
            item = self.items[n]
            if vad:
                ms = round(event["end"] * 1000)
                await self._send("input_audio_buffer.speech_stopped", audio_end_ms=ms, item_id=item)
            await self._send(  # (`reason`, ours: silence, semantic, timeout, commit or max_length)
                "input_audio_buffer.committed",
                previous_item_id=self.last_item,
                item_id=item,
                reason=event["reason"],
            )
            self.last_item = item
        elif kind == "partial":
            await self._delta(n, event["text"])
        elif kind == "final":
            await self._delta(n, event["text"])
            await self._send(
                "conversation.item.input_audio_transcription.completed",
                item_id=self.items.pop(n),
                content_index=0,
                transcript=event["text"],
                usage={"type": "duration", "seconds": event["duration"]},
                cost=event["cost"],
            )
            self.sent.pop(n, None)
        elif kind == "cleared":
            if event["utterance"] is not None:  # the open utterance was dropped
                self.items.pop(event["utterance"], None)
                self.sent.pop(event["utterance"], None)
            await self._send("input_audio_buffer.cleared")
        elif kind == "error":  # this turn's transcript could not be made; the session goes on
            self.sent.pop(n, None)
            failure = {k: v for k, v in event.items() if k not in ("type", "utterance", "start", "end")}
            await self._send(
                "conversation.item.input_audio_transcription.failed",
                item_id=self.items.pop(n, None),
                content_index=0,
                error={"type": "transcription_error", "param": None, **failure},
            )
        elif kind == "rejected":  # a commit with less than 100 ms in the buffer: OpenAI's code for it
            await self.socket.send(commit_empty(event["message"], self.socket.request_id))

    async def _delta(self, n: int, text: str) -> None:
        """Send what `text` adds to the utterance's text sent so far (nothing when it revises it)."""
        sent = self.sent.get(n, "")
        if n not in self.items or not text.startswith(sent) or len(text) == len(sent):
            return
        self.sent[n] = text
        await self._send(
            "conversation.item.input_audio_transcription.delta",
            item_id=self.items[n],
            content_index=0,
            delta=text[len(sent) :],
        )
