"""Pipecat's OpenAI services against a speech-tools server: `OpenAITTSService` (with and without
`instructions`), `OpenAISTTService`, and `OpenAIRealtimeSTTService` (a Realtime transcription
session at its defaults: turns end where the pipeline's VAD says, by commit), called as a pipeline
calls them. Prints one JSON object.

    python pipecat_session.py http://127.0.0.1:8000/v1 "Text to speak."
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import wave
from typing import Any

from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.stt import OpenAIRealtimeSTTService, OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService

RATE = 24000


class Collector(FrameProcessor):
    """The end of the pipeline: keeps the audio and the errors that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.pcm = b""
        self.errors: list[str] = []
        self.interim: list[str] = []
        self.final = ""
        self.heard = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.pcm += frame.audio
        elif isinstance(frame, ErrorFrame):
            self.errors.append(frame.error)
        elif isinstance(frame, InterimTranscriptionFrame):
            self.interim.append(frame.text)
        elif isinstance(frame, TranscriptionFrame):
            self.final = frame.text
            self.heard.set()
        await self.push_frame(frame, direction)


async def speak(base_url: str, text: str, instructions: str | None) -> tuple[bytes, list[str]]:
    """`text` through a pipeline of the TTS service and a collector, as a voice agent runs it."""
    settings = OpenAITTSService.Settings(voice="alloy", instructions=instructions)
    tts = OpenAITTSService(api_key="unused", base_url=base_url, sample_rate=RATE, settings=settings)
    collector = Collector()
    task = PipelineTask(Pipeline([tts, collector]), params=PipelineParams(audio_out_sample_rate=RATE))
    await task.queue_frames([TTSSpeakFrame(text), EndFrame()])
    await PipelineRunner(handle_sigint=False).run(task)
    return collector.pcm, collector.errors


async def transcribe_realtime(base_url: str, pcm: bytes) -> dict[str, Any]:
    """`pcm` as a microphone would feed it (20 ms frames, the VAD's start and stop around it) through
    the realtime STT service; the transcription it pushes."""
    url = base_url.replace("http://", "ws://") + "/realtime"
    stt = OpenAIRealtimeSTTService(api_key="unused", base_url=url)
    collector = Collector()
    task = PipelineTask(Pipeline([stt, collector]), params=PipelineParams(audio_in_sample_rate=RATE))
    running = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    step = RATE // 50 * 2
    frames: list[Frame] = [VADUserStartedSpeakingFrame()]
    frames += [InputAudioRawFrame(pcm[i : i + step], RATE, 1) for i in range(0, len(pcm), step)]
    await task.queue_frames([*frames, VADUserStoppedSpeakingFrame()])
    async with asyncio.timeout(60):
        await collector.heard.wait()
    await task.queue_frame(EndFrame())
    await running
    return {"text": collector.final, "interim": collector.interim, "errors": collector.errors}


async def main(base_url: str, text: str) -> dict[str, Any]:
    plain, plain_errors = await speak(base_url, text, None)
    styled, styled_errors = await speak(base_url, text, "Speak warmly, like a friendly concierge.")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(plain)
    stt = OpenAISTTService(
        api_key="unused", base_url=base_url, settings=OpenAISTTService.Settings(model="whisper-1")
    )
    heard = await stt._transcribe(buffer.getvalue())  # what run_stt calls with each utterance's WAV
    return {
        "plain": {"seconds": len(plain) / 2 / RATE, "errors": plain_errors},
        "instructions": {"seconds": len(styled) / 2 / RATE, "errors": styled_errors},
        "text": heard.text,
        "realtime": await transcribe_realtime(base_url, plain),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
