"""LiveKit Agents' OpenAI plugin against a speech-tools server: `openai.TTS` with its defaults
(gpt-4o-mini-tts: SSE deltas of MP3), `openai.STT` over the same audio, and `openai.STT` with
`use_realtime=True` (a Realtime transcription session with server VAD) streaming it as a room
would. Prints one JSON object.

    python livekit_session.py http://127.0.0.1:8000/v1 "Text to speak."
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit import rtc
from livekit.agents import stt as agents_stt
from livekit.agents.utils import http_context
from livekit.plugins import openai


async def first_final(stt: agents_stt.STT, frames: list[rtc.AudioFrame], tenths: int) -> dict[str, Any]:
    """The frames, then `tenths` tenths of a second of silence, through a streaming STT (as
    a room feeds it): its first final transcript and the events seen until it."""
    rate = frames[0].sample_rate
    silence = rtc.AudioFrame(b"\0\0" * (rate // 10), rate, 1, rate // 10)
    seen: list[str] = []
    stream = stt.stream()
    for frame in [*frames, *[silence] * tenths]:
        stream.push_frame(frame)
    final = ""
    async with asyncio.timeout(60):
        async for event in stream:
            seen.append(event.type.value)
            if event.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                final = event.alternatives[0].text
                break
    await stream.aclose()
    await stt.aclose()
    return {"text": final, "events": seen}


async def stream_realtime(base_url: str, frames: list[rtc.AudioFrame]) -> dict[str, Any]:
    """The frames, then a second of silence, through a realtime STT stream; its first final."""
    async with http_context.open():
        stt = openai.STT(base_url=base_url, api_key="unused", model="gpt-4o-transcribe", use_realtime=True)
        return await first_final(stt, frames, 10)


async def main(base_url: str, text: str) -> dict[str, Any]:
    tts = openai.TTS(base_url=base_url, api_key="unused")  # defaults: gpt-4o-mini-tts, SSE, mp3
    frames = [event.frame async for event in tts.synthesize(text)]
    stt = openai.STT(base_url=base_url, api_key="unused", model="whisper-1", use_realtime=False)
    heard = await stt.recognize(frames)
    await tts.aclose()
    await stt.aclose()
    realtime = await stream_realtime(base_url, frames)
    return {
        "frames": len(frames),
        "sample_rate": frames[0].sample_rate if frames else 0,
        "seconds": sum(f.samples_per_channel for f in frames) / frames[0].sample_rate if frames else 0,
        "text": heard.alternatives[0].text if heard.alternatives else "",
        "realtime": realtime,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
