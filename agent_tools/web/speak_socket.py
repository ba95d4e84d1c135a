"""`/v1/speak/ws`: speech from text that arrives in pieces, for a conversation orchestrator.

The client sends JSON messages: `{"type": "text", "text": ...}` appends to the open utterance (a
new one opens with the first text after the last ended); each sentence is spoken once it is
complete. `{"type": "flush"}` speaks what is left without waiting for an end mark, `{"type":
"end"}` flushes and ends the utterance, `{"type": "cancel"}` stops it (barge-in) within one
sentence. `{"type": "truncate", "played_ms": N, "utterance"?: n}` says the listener barged in after
N ms of playback of utterance n (default: the last one that sent audio): open utterances stop as
with cancel, and the server answers `truncated` with exactly the words heard to their end — the text
an orchestrator should keep in its history. The server sends `ready`, then per sentence a `mark`
(with its words' marks) and an `audio` event (base64 PCM16), and per utterance one `done` that says
why it ended and exactly which text and how many milliseconds of audio were delivered; refusals of
one utterance arrive as `error` before its `done`, and the socket stays open for the next.
"""

from __future__ import annotations

import time
from collections import deque

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import Busy, error_body
from agent_tools.core.outputs import SpeechFrames, word_mark
from agent_tools.core.runtime import Runtime
from agent_tools.core.scheduler import HeldSlot
from agent_tools.core.streams import SpeechStreams
from agent_tools.web.sockets import ClientGone, ClientTooSlow, SocketRoute, SocketSession
from agent_tools.web.speak_messages import (
    REMEMBERED_UTTERANCES,
    SpeakMessage,
    SpeakParams,
    TextMessage,
    TruncateMessage,
)
from policies import Principal
from speech_backend import SpeechError
from speech_backend.text import SentenceAssembler

# Utterances a connection may have open (being spoken or waiting their turn); a client that
# queues more is closed with `busy` rather than holding memory and tasks without bound.
MAX_OPEN_UTTERANCES = 8


class Utterance:
    """One utterance: text in, sentences out to its speaker task, and what was delivered."""

    def __init__(self, index: int, after: anyio.Event | None) -> None:
        self.index = index
        self.after = after
        self.assembler = SentenceAssembler()
        self.sentences: tuple[MemoryObjectSendStream[str], MemoryObjectReceiveStream[str]] = (
            anyio.create_memory_object_stream[str](max_buffer_size=1_000_000)
        )
        self.received_chars = 0
        self.queued = 0  # sentences handed over and not yet delivered
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self.error: BaseException | None = None
        self.reason = "end"

    def push(self, text: str) -> None:
        """Append text; complete sentences go to the speaker."""
        self.received_chars += len(text)
        for sentence in self.assembler.push(text):
            self._hand_over(sentence)

    def flush(self) -> None:
        """Hand over the text without an end mark too."""
        rest = self.assembler.flush()
        if rest:
            self._hand_over(rest)

    def _hand_over(self, sentence: str) -> None:
        self.queued += 1
        self.sentences[0].send_nowait(sentence)

    @property
    def speaking(self) -> bool:
        """Whether sentences are waiting to be spoken (the client has something to listen to)."""
        return self.queued > 0

    def end(self) -> None:
        """No more text: speak what is left, then finish."""
        self.flush()
        self.sentences[0].close()

    def stop(self, reason: str, error: BaseException | None = None) -> None:
        """Stop within the sentence being synthesized; nothing more is sent but the final `done`."""
        self.reason, self.error = reason, error
        self.sentences[0].close()
        self.scope.cancel()


class SpeakSocket:
    """The `/v1/speak/ws` endpoint."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def socket(self) -> SocketRoute:
        """The route: each utterance is a `speak` call with its own audit line."""
        return SocketRoute("/v1/speak/ws", "speak", self._session, audit_each_call=True)

    async def _session(self, session: SocketSession, principal: Principal | None) -> None:
        params = SpeakParams.model_validate(dict(session.websocket.query_params))
        who, voice = self.runtime.streams.open(principal, params.voice)
        rate = params.sample_rate or self.runtime.service.require().voice(voice).sample_rate
        await session.send({"type": "ready", "voice": voice, "sample_rate": rate})
        await Conversation(self.runtime.streams, session, who, voice, params).run()


class Conversation:
    """The utterances of one connection, spoken one after another."""

    def __init__(
        self, streams: SpeechStreams, session: SocketSession, who: Principal, voice: str, params: SpeakParams
    ) -> None:
        self.streams = streams
        self.service = streams.service
        self.session = session
        self.who = who
        self.voice = voice
        self.params = params
        self.open: deque[Utterance] = deque()
        self.count = 0
        self.delivered: dict[int, SpeechFrames] = {}  # the last few utterances' frames, by number
        self.last_heard: int | None = None  # the last utterance that sent audio

    async def run(self) -> None:
        """Read messages until the client closes.

        Raises:
            ClientGone: the client closed (or was closed for not reading).
            DeadlineExceeded: the client sent nothing for the socket timeout.
            ValidationError, PayloadTooLarge: a message this endpoint does not take.
        """
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            try:
                await self._read(tg)
            except Exception as exc:  # ends the connection, after the speaker tasks stop
                failure = exc
            tg.cancel_scope.cancel()

        if failure is not None:
            raise failure
        raise ClientGone  # a speaker task closed the connection

    async def _read(self, tg: anyio.abc.TaskGroup) -> None:
        current: Utterance | None = None
        while True:
            # a client listening to an utterance being spoken is not idle
            raw = await self.session.receive(
                "send text, flush, end, cancel or truncate messages",
                lambda: not any(u.speaking for u in self.open),
            )
            message = SpeakMessage.validate_json(raw)
            if isinstance(message, TextMessage):
                if current is None:
                    current = self._start(tg)
                try:
                    self.service.limits.check_text(message.text, current.received_chars)
                except SpeechError as exc:
                    current.stop("error", exc)
                    current = None
                    continue
                current.push(message.text)
            elif message.type == "flush" and current is not None:
                current.flush()
            elif message.type == "end" and current is not None:
                current.end()
                current = None
            elif message.type in ("cancel", "truncate"):
                for utterance in self.open:
                    utterance.stop("cancelled")
                current = None
                if isinstance(message, TruncateMessage):
                    await self._truncated(message)

    async def _truncated(self, message: TruncateMessage) -> None:
        """Answer a barge-in with the words heard to their end (none when the utterance is unknown)."""
        index = message.utterance or self.last_heard
        frames = self.delivered.get(index) if index is not None else None
        heard = frames.heard(message.played_ms) if frames is not None else []
        await self.session.send(
            {
                "type": "truncated",
                "utterance": index if frames is not None else None,
                "played_ms": message.played_ms,
                "text": " ".join(w.text for w in heard),
                "words": [word_mark(w) for w in heard],
            }
        )

    def _start(self, tg: anyio.abc.TaskGroup) -> Utterance:
        if len(self.open) >= MAX_OPEN_UTTERANCES:
            raise Busy(
                f"{MAX_OPEN_UTTERANCES} utterances are already open on this connection; wait for a "
                "`done` before starting another",
                retry_after_ms=1000,
            )
        self.count += 1
        after = self.open[-1].finished if self.open else None
        utterance = Utterance(self.count, after)
        self.open.append(utterance)
        tg.start_soon(self._speak_or_close, utterance, tg.cancel_scope)
        return utterance

    async def _speak_or_close(self, utterance: Utterance, connection: anyio.CancelScope) -> None:
        """Speak; a client that stopped reading (or left) ends the whole connection."""
        try:
            await self._speak(utterance)
        except ClientTooSlow as exc:
            await self.session.fail(exc)
            connection.cancel()
        except ClientGone:
            connection.cancel()

    async def _speak(self, utterance: Utterance) -> None:
        """Speak the utterance's sentences as they come, then report what was delivered."""
        frames = SpeechFrames(self.params.sample_rate)
        self.delivered[utterance.index] = frames
        while len(self.delivered) > REMEMBERED_UTTERANCES:
            del self.delivered[min(self.delivered)]
        spoken_text = ""  # the utterance's text accepted so far, sentences joined by a space
        tag = {"utterance": utterance.index}
        slot: HeldSlot | None = None  # the utterance's admission, taken with its first sentence
        try:
            if utterance.after is not None:
                await utterance.after.wait()  # utterances play in order
            with utterance.scope:
                async with utterance.sentences[1] as sentences:
                    async for text in sentences:
                        plan = await self.streams.start(
                            text,
                            voice=self.voice,
                            speed=self.params.speed,
                            principal=self.who,
                            spoken_text=spoken_text,
                            spoken_seconds=frames.audio_seconds,
                            slot=slot,
                            cost=frames.cost,
                        )
                        slot = plan.slot
                        spoken_text = f"{spoken_text} {text}" if spoken_text else text
                        async with self.streams.frames(plan, frames, "speak_socket") as receive:
                            async for item in receive:
                                if isinstance(item, Exception):
                                    raise item
                                await self.session.send({"type": "mark", **tag, **item.mark()})
                                await self.session.send({"type": "audio", **tag, **item.audio()})
                                frames.sent(item)
                                self.last_heard = utterance.index
                        utterance.queued -= 1
        except (ClientGone, ClientTooSlow):
            raise
        except Exception as exc:  # this utterance failed; the connection goes on
            utterance.reason, utterance.error = "error", exc
        finally:
            if slot is not None:
                with anyio.CancelScope(shield=True):
                    await slot.release()
            utterance.finished.set()
            for end in utterance.sentences:
                end.close()
            # utterances finish in order (each waits for the one before), so this is the oldest
            if self.open and self.open[0] is utterance:
                self.open.popleft()
            else:
                self.open.remove(utterance)
        body = None if utterance.error is None else error_body(utterance.error, self.session.request_id)
        audit_call(
            self.service.policy,
            request_id=self.session.request_id,
            principal=self.who,
            tool="speak",
            error=body,
            seconds=time.perf_counter() - frames.cost.started,
            chars=len(spoken_text),
            audio_seconds=frames.audio_seconds,
            transport="ws",
        )
        if body is not None:
            await self.session.send({"type": "error", **tag, **body})
        await self.session.send({"type": "done", **tag, "reason": utterance.reason, **frames.summary()})
