"""Wyoming speech: one utterance is a `synthesize` (its text whole) or a `synthesize-start`,
`synthesize-chunk`s and `synthesize-stop` (text as it is written, each complete sentence spoken as
soon as it is, its audio sent as it is made). It is one `speak` call through core's streams: the
caps and policy over the whole utterance, one admission, one audit line."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import SynthesizeVoice

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import error_body, unwrap
from agent_tools.core.outputs import SpeechFrames
from agent_tools.core.scheduler import HeldSlot
from agent_tools.core.streams import SpeechStreams
from agent_tools.wyoming.wire import ClientGone
from policies import Principal
from speech_backend.text import SentenceAssembler

Send = Callable[[Event], Awaitable[None]]
SAMPLES_PER_CHUNK = 4096


async def chosen_voice(streams: SpeechStreams, who: Principal, voice: SynthesizeVoice | None) -> str | None:
    """The voice a Wyoming request names: by id, else the first of its language `who` may use, else
    the default (None)."""
    if voice is None or voice.name:
        return voice.name if voice is not None else None
    if voice.language:
        offered = await streams.service.voices(voice.language, principal=who)
        return offered[0].id if offered else None
    return None


class WyomingUtterance:
    """One utterance being spoken over a connection."""

    def __init__(
        self, streams: SpeechStreams, who: Principal, voice: str | None, send: Send, request_id: str
    ) -> None:
        self.streams = streams
        self.who = who
        self.voice = voice
        self.send = send
        self.request_id = request_id
        self.frames = SpeechFrames()
        self.assembler = SentenceAssembler()
        self.spoken_text = ""
        self.received_chars = 0
        self.slot: HeldSlot | None = None

    async def push(self, text: str, *, per_sentence: bool) -> None:
        """More text: its complete sentences are spoken now (each its own audio-start/stop when
        `per_sentence`, as streamed synthesis does).

        Raises:
            ContractError: a cap, the policy, a voice or capacity refused it.
        """
        self.streams.service.limits.check_text(text, self.received_chars)
        self.received_chars += len(text)
        for sentence in self.assembler.push(text):
            await self.say(sentence, per_sentence=per_sentence)

    async def finish(self, *, per_sentence: bool) -> None:
        """No more text: speak what is left (a sentence without an end mark too)."""
        rest = self.assembler.flush()
        if rest:
            await self.say(rest, per_sentence=per_sentence)

    async def say(self, text: str, *, per_sentence: bool) -> None:
        """Speak `text` (whole sentences), as audio-start, chunks and audio-stop."""
        streams, frames = self.streams, self.frames
        first = not self.spoken_text
        plan = await streams.start(
            text,
            voice=self.voice,
            principal=self.who,
            spoken_text=self.spoken_text,
            spoken_seconds=frames.audio_seconds,
            slot=self.slot,
            cost=frames.cost,
        )
        self.slot = plan.slot
        self.spoken_text = f"{self.spoken_text} {text}" if self.spoken_text else text
        started = False
        async with streams.frames(plan, frames, "wyoming") as receive:
            async for item in receive:
                if isinstance(item, Exception):
                    raise item
                rate = item.sample_rate
                if not started and (per_sentence or first):
                    await self.send(AudioStart(rate=rate, width=2, channels=1).event())
                started = True
                pcm, step = item.pcm_bytes, SAMPLES_PER_CHUNK * 2
                for at in range(0, len(pcm), step):
                    await self.send(
                        AudioChunk(rate=rate, width=2, channels=1, audio=pcm[at : at + step]).event()
                    )
                frames.sent(item)
        if started and per_sentence:
            await self.send(AudioStop().event())

    async def close(self, error: BaseException | None) -> None:
        """The utterance is over: its slot freed, its audit line written."""
        if self.slot is not None:
            await self.slot.release()
        error = unwrap(error) if error is not None else None
        gone = isinstance(error, ClientGone)  # a listener that left ended it, not a failure
        body = None if error is None or gone else error_body(error, self.request_id)
        audit_call(
            self.streams.service.policy,
            request_id=self.request_id,
            principal=self.who,
            tool="speak",
            error=body,
            seconds=time.perf_counter() - self.frames.cost.started,
            chars=len(self.spoken_text),
            audio_seconds=self.frames.audio_seconds,
            transport="wyoming",
        )
