"""LiveKit's NVIDIA plugin and Pipecat's NVIDIA services against a speech-tools gRPC server, at
their defaults apart from the server address and TLS: LiveKit `nvidia.TTS` (its default voice,
Magpie-Multilingual.EN-US.Leo) and `nvidia.STT` streaming that audio as a room would; Pipecat
`NvidiaTTSService` (default voice ...EN-US.Aria) in a pipeline and `NvidiaSTTService` fed as a
microphone would. Prints one JSON object.

    python riva_session.py 127.0.0.1:50051 "Text to speak."
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit.plugins import nvidia
from livekit_session import first_final  # (this folder is on the path of a script run from it)
from pipecat.frames.frames import (
    EndFrame,
    InputAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.services.nvidia.stt import NvidiaSTTService
from pipecat.services.nvidia.tts import NvidiaTTSService
from pipecat_session import Collector

RATE = 16000


async def livekit(server: str, text: str) -> dict[str, Any]:
    tts = nvidia.TTS(server=server, use_ssl=False)
    frames = [event.frame async for event in tts.synthesize(text)]
    await tts.aclose()
    rate = frames[0].sample_rate
    heard = await first_final(nvidia.STT(server=server, use_ssl=False), frames, 15)
    seconds = sum(f.samples_per_channel for f in frames) / rate
    return {"seconds": seconds, "rate": rate, **heard}


async def pipecat(server: str, text: str) -> dict[str, Any]:
    tts = NvidiaTTSService(server=server, use_ssl=False, sample_rate=RATE)
    spoken = Collector()
    task = PipelineTask(Pipeline([tts, spoken]), params=PipelineParams(audio_out_sample_rate=RATE))
    await task.queue_frames([TTSSpeakFrame(text), EndFrame()])
    await PipelineRunner(handle_sigint=False).run(task)

    stt = NvidiaSTTService(server=server, use_ssl=False)
    heard = Collector()
    task = PipelineTask(Pipeline([stt, heard]), params=PipelineParams(audio_in_sample_rate=RATE))
    running = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    step = RATE // 50 * 2  # 20 ms frames
    pcm = spoken.pcm + b"\0" * RATE * 2
    for at in range(0, len(pcm), step):
        await task.queue_frame(InputAudioRawFrame(pcm[at : at + step], RATE, 1))
        await asyncio.sleep(0.02)  # as a microphone gives them
    async with asyncio.timeout(60):
        await heard.heard.wait()
    await task.queue_frame(EndFrame())
    await running
    return {
        "seconds": len(spoken.pcm) / 2 / RATE,
        "tts_errors": spoken.errors,
        "text": heard.final,
        "interim": heard.interim,
        "stt_errors": heard.errors,
    }


async def main(server: str, text: str) -> dict[str, Any]:
    return {"livekit": await livekit(server, text), "pipecat": await pipecat(server, text)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
