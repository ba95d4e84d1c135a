"""Speech streamed sentence by sentence: the use case behind `/v1/speak/stream`, OpenAI's speech
and `/v1/speak/ws`. Every check happens before the first byte, admission included (a refusal for
capacity is a status, not an empty stream); frames come out as sentences are synthesized; leaving
early (barge-in, a client gone) stops synthesis at the next sentence."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from agent_tools.core.cost import Cost
from agent_tools.core.outputs import SpeechFrame, SpeechFrames
from agent_tools.core.scheduler import HeldSlot
from agent_tools.core.service import SpeechService
from policies import Principal
from speech_backend import SpeechChunk
from speech_errors import ContractError

StreamItem = SpeechFrame | ContractError


@dataclass(frozen=True)
class SpeechPlan:
    """A checked piece of an utterance, ready to stream."""

    chunks: Iterator[SpeechChunk]
    voice: str
    principal: Principal
    slot: HeldSlot  # the utterance's admission: whoever started the utterance releases it at its end
    first: bool = True  # the utterance's first text: its first sentence goes ahead of later ones
    spoken_seconds: float = 0.0  # audio the utterance already has: the output cap is on the whole


class SpeechStreams:
    """Streamed speech over the service's checks and the scheduler's slots."""

    def __init__(self, service: SpeechService) -> None:
        self.service = service

    def open(self, principal: Principal | None, voice: str | None) -> tuple[Principal, str]:
        """The caller and voice of a connection that will stream several utterances: the caller may
        speak, and the voice exists (each utterance is checked in full when it starts).

        Raises:
            Forbidden, Unauthorized, VoiceNotFound, BackendUnavailable.
        """
        who = self.service.caller(principal)
        self.service.policy.check_tool(who, "speak")
        return who, self.service.check_voice(voice)

    async def start(
        self,
        text: str,
        *,
        voice: str | None = None,
        speed: float = 1.0,
        deterministic: bool = False,
        principal: Principal | None = None,
        spoken_text: str = "",
        spoken_seconds: float = 0.0,
        slot: HeldSlot | None = None,
        cost: Cost | None = None,
    ) -> SpeechPlan:
        """Every check a streamed piece of text needs, the utterance's admission, and the voice
        loaded, before anything is sent. The plan holds `slot` (the utterance's, for its later
        pieces) or a synthesis slot taken now (its wait counted in `cost`): the caller releases
        `plan.slot` when the utterance ends, however it ends.

        For text arriving in pieces, `spoken_text` and `spoken_seconds` are the utterance's earlier
        pieces: the caps and content rules apply to the whole, and only the first piece counts as a
        call.

        Raises:
            TextTooLong, InvalidArgument, VoiceNotFound, and the policy's refusals; Busy: no
            synthesis slot in time, or shutting down (an utterance already admitted goes on).
        """
        service, scheduler = self.service, self.service.scheduler
        voice_id, who = await service.admit_speech(text, voice, speed, principal, spoken_text)
        service.limits.check_spoken(spoken_seconds)
        options = service.synthesis_options(speed, deterministic, streamed=not spoken_text)
        synthesizer = service.require().synthesizer
        held = slot or await scheduler.hold(scheduler.synthesis, cost)
        try:
            chunks = await anyio.to_thread.run_sync(lambda: synthesizer.synthesize(text, voice_id, options))
        except BaseException:
            if slot is None:
                await held.release()
            raise
        return SpeechPlan(chunks, voice_id, who, held, first=not spoken_text, spoken_seconds=spoken_seconds)

    @asynccontextmanager
    async def frames(
        self, plan: SpeechPlan, frames: SpeechFrames, surface: str
    ) -> AsyncIterator[MemoryObjectReceiveStream[StreamItem]]:
        """Synthesize a started piece under its utterance's slot; the block receives each sentence's
        frame as soon as it is ready
        (`frames` numbers them across the pieces of one utterance and counts what they cost; the
        utterance's first frame is timed for `surface` in the metrics).

        A failure midway arrives as a `ContractError` item (anything unexpected as `internal`'s), after
        which the stream ends. Leaving the block early stops synthesis at the next sentence and frees
        the slot. Enter and leave it in the same task.
        """
        service, scheduler = self.service, self.service.scheduler
        send, receive = anyio.create_memory_object_stream[StreamItem](max_buffer_size=1)

        def work() -> float:
            total = 0.0
            for chunk in scheduler.sentence_by_sentence(plan.chunks, first=plan.first, cost=frames.cost):
                total += chunk.audio.duration
                service.limits.check_spoken(plan.spoken_seconds + total)
                frame = frames.frame(chunk)
                if frame.sequence == 0:
                    service.metrics.first_audio.labels(surface).observe(frames.first_audio_seconds)
                try:
                    anyio.from_thread.run(send.send, frame)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break  # the listener is gone: stop at this sentence
            return total

        async def produce() -> None:
            engine_before = frames.cost.engine_seconds
            async with send:
                try:
                    timeout = service.settings.speak_timeout_seconds
                    spoken = await scheduler.run(
                        scheduler.synthesis, work, timeout, "speak", cost=frames.cost, held=True
                    )
                except ContractError as exc:
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(exc)
                    return
                await service.spoke(plan.principal, spoken)
                if spoken > 0:
                    rtf = (frames.cost.engine_seconds - engine_before) / spoken
                    service.metrics.real_time_factor.labels("synthesis").observe(rtf)

        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(produce)
            try:
                yield receive
            finally:
                tg.cancel_scope.cancel()
