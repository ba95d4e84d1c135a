"""Wyoming recognition: `transcribe` (optional: the language), then `audio-start`, `audio-chunk`s
and `audio-stop`; the audio is held within the decoded-audio caps as it arrives (counted before it
is kept), then transcribed through core as one whole file (a WAV of what was sent), and answered
with `transcript-start`, a `transcript-chunk` per segment, `transcript-stop` and the `transcript`."""

from __future__ import annotations

import io
import wave

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event

from agent_tools.core.service import SpeechService
from agent_tools.core.sources import AudioSource
from policies import Principal
from speech_backend import AudioLimits, AudioTooLong, InvalidArgument, PayloadTooLarge


class HeardAudio:
    """The audio of one `transcribe`, kept within bounds as it arrives."""

    def __init__(self, start: AudioStart, limits: AudioLimits) -> None:
        if start.width not in (1, 2, 3, 4) or not 1 <= start.channels <= limits.max_channels:
            raise InvalidArgument(
                f"audio-start needs a width of 1-4 bytes and 1-{limits.max_channels} channels"
            )
        if not limits.min_sample_rate <= start.rate <= limits.max_sample_rate:
            raise InvalidArgument(
                f"audio-start's rate must be between {limits.min_sample_rate} and {limits.max_sample_rate} Hz"
            )
        self.format = (start.rate, start.width, start.channels)
        self.limits = limits
        self.bytes_per_second = start.rate * start.width * start.channels
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: AudioChunk) -> None:
        """Keep one chunk.

        Raises:
            InvalidArgument: its format is not the one audio-start announced.
            PayloadTooLarge, AudioTooLong: the audio would pass the caps.
        """
        if (chunk.rate, chunk.width, chunk.channels) != self.format:
            raise InvalidArgument("an audio-chunk's rate, width or channels differ from its audio-start")
        size = self.size + len(chunk.audio)
        if size > self.limits.max_bytes:
            raise PayloadTooLarge(
                f"the audio is over {self.limits.max_bytes} bytes; send a shorter recording"
            )
        if size / self.bytes_per_second > self.limits.max_seconds:
            raise AudioTooLong(
                f"the audio is longer than {self.limits.max_seconds:g} s; send a shorter recording"
            )
        self.parts.append(chunk.audio)
        self.size = size

    @property
    def seconds(self) -> float:
        """The audio received so far, in seconds."""
        return self.size / self.bytes_per_second

    def wav(self) -> bytes:
        """What was sent, as a WAV file."""
        rate, width, channels = self.format
        out = io.BytesIO()
        with wave.open(out, "wb") as file:
            file.setnchannels(channels)
            file.setsampwidth(width)
            file.setframerate(rate)
            file.writeframes(b"".join(self.parts))
        return out.getvalue()


async def transcribe(
    service: SpeechService, heard: HeardAudio, language: str | None, who: Principal, request_id: str
) -> list[Event]:
    """The events that answer a finished `transcribe`.

    Raises:
        ContractError: the policy, the audio or capacity refused it.
    """
    result = await service.transcribe(
        AudioSource(data=heard.wav()),
        language=language,
        principal=who,
        request_id=request_id,
        transport="wyoming",
    )
    transcript = result.transcript
    events = [TranscriptStart(language=transcript.language).event()]
    texts = [s.text for s in transcript.segments if s.text]
    # the chunks join to the transcript's text, as a client appending them would show it
    events += [TranscriptChunk(text=text if i == 0 else f" {text}").event() for i, text in enumerate(texts)]
    events += [
        TranscriptStop().event(),
        Transcript(text=transcript.text, language=transcript.language).event(),
    ]
    return events
