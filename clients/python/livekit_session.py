"""LiveKit Agents' OpenAI plugin against a speech-tools server: `openai.TTS` with its defaults
(gpt-4o-mini-tts: SSE deltas of MP3) and `openai.STT` over the same audio. Prints one JSON object.

    python livekit_session.py http://127.0.0.1:8000/v1 "Text to speak."
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit.plugins import openai


async def main(base_url: str, text: str) -> dict[str, Any]:
    tts = openai.TTS(base_url=base_url, api_key="unused")  # defaults: gpt-4o-mini-tts, SSE, mp3
    frames = [event.frame async for event in tts.synthesize(text)]
    stt = openai.STT(base_url=base_url, api_key="unused", model="whisper-1", use_realtime=False)
    heard = await stt.recognize(frames)
    await tts.aclose()
    await stt.aclose()
    return {
        "frames": len(frames),
        "sample_rate": frames[0].sample_rate if frames else 0,
        "seconds": sum(f.samples_per_channel for f in frames) / frames[0].sample_rate if frames else 0,
        "text": heard.alternatives[0].text if heard.alternatives else "",
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
