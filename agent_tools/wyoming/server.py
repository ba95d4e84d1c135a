"""The Wyoming listener: TCP on its own port, loopback by default, an allowlist of client networks
beyond it; each connection reads bounded events and answers them through core, as one configured
principal. A refusal is Wyoming's `error` event (`code`: the contract's error code, `text`: its
message) and the connection goes on; a malformed or oversized event also closes it. A connection
that sends nothing for the socket timeout is closed."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import error_body, unwrap
from agent_tools.core.runtime import Runtime, new_request_id
from agent_tools.settings import ServerSettings
from agent_tools.wyoming.describe import info
from agent_tools.wyoming.hearing import HeardAudio, transcribe
from agent_tools.wyoming.speech import WyomingUtterance, chosen_voice
from agent_tools.wyoming.wire import MAX_HEADER_BYTES, ClientGone, read_event
from policies import Principal
from speech_errors import ContractError

logger = logging.getLogger(__name__)
T = TypeVar("T")

LOOPBACK = ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")


def allowed_networks(server: ServerSettings) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The client networks Wyoming answers: loopback and the configured ones.

    Raises:
        ValueError: a network that is not CIDR, or a bind beyond loopback with no allowlist.
    """
    try:
        configured = tuple(ipaddress.ip_network(n, strict=False) for n in server.wyoming_allowed_networks)
    except ValueError as exc:
        raise ValueError(f"SPEECH_TOOLS_SERVER__WYOMING_ALLOWED_NETWORKS: {exc}") from exc
    if server.wyoming_host not in ("127.0.0.1", "localhost", "::1") and not configured:
        raise ValueError(
            f"serving Wyoming on {server.wyoming_host} needs SPEECH_TOOLS_SERVER__WYOMING_ALLOWED_NETWORKS "
            "(the client networks, say 192.168.1.0/24): Wyoming has no authentication"
        )
    return (*LOOPBACK, *configured)


class WyomingServer:
    """Wyoming over one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        server = runtime.settings.server
        self.networks = allowed_networks(server)
        self.principal_id = server.wyoming_principal

    def principal(self) -> Principal:
        """The principal every Wyoming call is made as.

        Raises:
            Unauthorized: the configured principal is not in the policy.
        """
        policy = self.runtime.policy
        if self.principal_id is None:
            return policy.local()
        found = policy.config.principal(self.principal_id)
        if found is None:
            from policies import Unauthorized

            raise Unauthorized(f"the Wyoming principal {self.principal_id!r} is not in the policy")
        return found

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; `task_status` is given the port.

        Raises:
            ValueError: the principal Wyoming calls run as is not in the policy (a start refused,
                not a first call).
        """
        try:
            self.principal()
        except ContractError as exc:
            raise ValueError(f"{exc.message}; set SPEECH_TOOLS_SERVER__WYOMING_PRINCIPAL") from exc
        server = self.runtime.settings.server
        listener = await asyncio.start_server(
            self._connection, server.wyoming_host, server.wyoming_port or 0, limit=MAX_HEADER_BYTES
        )
        port = int(listener.sockets[0].getsockname()[1])
        logger.info("serving wyoming", extra={"host": server.wyoming_host, "port": port})
        task_status.started(port)
        async with listener:
            await listener.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = ipaddress.ip_address(peer[0]) if peer else None
        try:
            if address is None or not any(address in network for network in self.networks):
                logger.warning("wyoming client refused: not in the allowed networks")
                return
            await WyomingConnection(self.runtime, reader, writer, self.principal()).run()
        except Exception:  # a connection's failure is its own
            logger.exception("wyoming connection failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class WyomingConnection:
    """One client's events, in order."""

    def __init__(
        self, runtime: Runtime, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: Principal
    ) -> None:
        self.runtime = runtime
        self.reader = reader
        self.writer = writer
        self.who = who
        self.utterance: WyomingUtterance | None = None  # a streamed synthesis under way
        self.streaming = False  # between synthesize-start and synthesize-stop
        self.language: str | None = None  # of the next transcription
        self.heard: HeardAudio | None = None

    async def send(self, event: Event) -> None:
        """Write one event.

        Raises:
            ClientGone: the client has closed the connection.
        """
        try:
            await async_write_event(event, self.writer)
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGone from exc

    async def run(self) -> None:
        """Answer events until the client leaves, goes silent, or sends one that cannot be read."""
        timeout = self.runtime.settings.service.socket_timeout_seconds
        while True:
            try:
                with anyio.fail_after(timeout):
                    event = await read_event(self.reader)
            except TimeoutError:
                return
            except ContractError as exc:  # the stream cannot be read past it
                await self._refuse(exc)
                return
            if event is None:
                return
            try:
                await self.handle(event)
            except Exception as exc:  # refused: the client hears why, the connection goes on
                failure = unwrap(exc)
                if isinstance(failure, ClientGone):
                    return
                await self._refuse(failure)

    async def handle(self, event: Event) -> None:
        """One event, answered (an event out of place, or of a kind not served here, is ignored,
        as Wyoming servers do).

        Raises:
            ContractError: refused (the caps, the policy, capacity, bad input).
        """
        if Describe.is_type(event.type):
            service = self.runtime.service
            described = await self._audited("list_voices", lambda _: info(service, self.who))
            await self.send(described.event())
        elif event.type.startswith("synthesize"):
            await self._speech(event)
        else:
            await self._hearing(event)

    async def _speech(self, event: Event) -> None:
        streams, kind = self.runtime.streams, event.type
        if SynthesizeStart.is_type(kind):
            await self._end_utterance(None)  # a stream never stopped ends where it is
            self.streaming = True
            voice = await chosen_voice(streams, self.who, SynthesizeStart.from_event(event).voice)
            self.runtime.scheduler.check_open()
            self.utterance = WyomingUtterance(streams, self.who, voice, self.send, new_request_id())
        elif SynthesizeChunk.is_type(kind) and self.utterance is not None:
            await self._streamed(lambda u: u.push(SynthesizeChunk.from_event(event).text, per_sentence=True))
        elif SynthesizeStop.is_type(kind) and self.streaming:
            self.streaming = False
            if self.utterance is not None:  # (one that failed has said so already)
                await self._streamed(lambda u: u.finish(per_sentence=True))
                await self._end_utterance(None)
            await self.send(SynthesizeStopped().event())
        elif Synthesize.is_type(kind) and not self.streaming:  # (within a stream: a copy, ignored)
            await self._synthesize(Synthesize.from_event(event))

    async def _hearing(self, event: Event) -> None:
        service, kind = self.runtime.service, event.type
        if Transcribe.is_type(kind):
            self.language = Transcribe.from_event(event).language
        elif AudioStart.is_type(kind):
            self.runtime.scheduler.check_open()
            self.heard = HeardAudio(AudioStart.from_event(event), service.require().audio_limits)
        elif AudioChunk.is_type(kind) and self.heard is not None:
            self.heard.add(AudioChunk.from_event(event))
        elif AudioStop.is_type(kind) and self.heard is not None:
            heard, language, self.heard, self.language = self.heard, self.language, None, None

            def recognise(request_id: str) -> Awaitable[list[Event]]:
                return transcribe(service, heard, language, self.who, request_id)

            for answer in await self._audited("transcribe", recognise, audio_seconds=heard.seconds):
                await self.send(answer)

    async def _audited(
        self, tool: str, work: Callable[[str], Awaitable[T]], audio_seconds: float | None = None
    ) -> T:
        """`work` (given its request id) as one call with its audit line: who, how it ended, how
        long, the audio."""
        request_id, started = new_request_id(), time.perf_counter()
        error: dict[str, Any] | None = None
        try:
            return await work(request_id)
        except Exception as exc:
            error = error_body(unwrap(exc), request_id)
            raise
        finally:
            audit_call(
                self.runtime.policy,
                request_id=request_id,
                principal=self.who,
                tool=tool,
                error=error,
                seconds=time.perf_counter() - started,
                audio_seconds=audio_seconds,
                transport="wyoming",
            )

    async def _synthesize(self, request: Synthesize) -> None:
        streams = self.runtime.streams
        voice = await chosen_voice(streams, self.who, request.voice)
        utterance = WyomingUtterance(streams, self.who, voice, self.send, new_request_id())
        error: Exception | None = None
        try:
            await utterance.push(request.text, per_sentence=False)
            await utterance.finish(per_sentence=False)
            await self.send(AudioStop().event())
        except Exception as exc:
            error = exc
            raise
        finally:
            await utterance.close(error)

    async def _streamed(self, step: Any) -> None:
        """A step of the streamed utterance; a failure ends it (and is raised)."""
        assert self.utterance is not None
        try:
            await step(self.utterance)
        except Exception as exc:
            await self._end_utterance(exc)
            raise

    async def _end_utterance(self, error: Exception | None) -> None:
        utterance, self.utterance = self.utterance, None
        if utterance is not None:
            await utterance.close(error)

    async def _refuse(self, exc: BaseException) -> None:
        body = error_body(exc, new_request_id())
        with contextlib.suppress(ClientGone):
            await self.send(Error(text=body["message"], code=body["code"]).event())
