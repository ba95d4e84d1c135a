"""Speech in noise on `/v1/transcribe/ws`, with and without `noise_reduction`: held-out sentences
mixed at 5 dB SNR with stationary noise (pink) and non-stationary noise (white noise whose level
swells and fades 3 times a second, like passing traffic), each stream 1 s of noise, the sentence,
1.5 s of noise; the word error rate of the finals and the `speech_started` events beyond one per
sentence (false starts). Then DeepFilterNet's CPU cost per second of audio, in-process.

    python benchmarks/noise.py
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

import anyio
import numpy as np
from load import start, status
from websockets.asyncio.client import connect

from agent_tools.settings import Settings
from evals.metrics import TextScorer
from speech_backend import Audio, SynthesisOptions, build_synthesizer, resample, resolve_device
from speech_backend.voice_activity.denoise import DenoiserModel, model_file

RATE = 16000
SNR_DB = 5.0
SENTENCES = (
    "The doctor can see you on Tuesday morning at half past nine.",
    "Please remember to bring your passport and a printed copy of the ticket.",
    "Our team shipped the new version of the app last week.",
    "Could you turn the heating up a little in the living room?",
    "I would like to move my appointment to Friday afternoon.",
    "The train to the airport leaves every fifteen minutes.",
)
VOICES = ("en_US-joe-medium", "af_heart", "am_onyx")


def noise(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(samples).astype(np.float32)
    if kind == "pink":  # -3 dB per octave, by shaping the spectrum
        spectrum = np.fft.rfft(white)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
        return np.fft.irfft(spectrum, samples).astype(np.float32)
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * np.arange(samples) / RATE)
    return (white * swell).astype(np.float32)


def mixed(speech: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    stream = np.concatenate([np.zeros(RATE, np.float32), speech, np.zeros(int(RATE * 1.5), np.float32)])
    hum = noise(kind, len(stream), rng)
    voiced = speech[np.abs(speech) > 0.01]
    gain = np.sqrt(np.mean(voiced**2) / np.mean(hum**2) / 10 ** (SNR_DB / 10))
    return np.clip(stream + gain * hum, -1, 1)


async def heard(base: str, stream: np.ndarray, reduction: str | None) -> tuple[str, int]:
    """The finals' text and the count of speech_started events."""
    query = "?sample_rate=16000" + (f"&noise_reduction={reduction}" if reduction else "")
    url = base.replace("http://", "ws://") + "/v1/transcribe/ws" + query
    pcm = (stream * 32767).astype("<i2").tobytes()
    texts, starts = [], 0
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()
        for offset in range(0, len(pcm), 3200):
            await ws.send(pcm[offset : offset + 3200])
        await ws.send(json.dumps({"type": "end"}))
        async for message in ws:
            event = json.loads(message)
            if event["type"] == "speech_started":
                starts += 1
            elif event["type"] == "final":
                texts.append(event["text"])
            elif event["type"] == "done":
                break
    return " ".join(texts), starts


def cost(settings: Settings) -> float:
    """CPU seconds of DeepFilterNet per second of audio, one stream."""
    path = model_file(settings.engines.cache_dir)
    assert path is not None, "run `make live-models`"
    denoiser = DenoiserModel(path).stream("near_field")
    audio = np.random.default_rng(1).standard_normal(RATE * 10).astype(np.float32) * 0.1
    started = time.process_time()
    for offset in range(0, len(audio), 1600):
        denoiser.push(audio[offset : offset + 1600])
    return (time.process_time() - started) / 10


def main() -> None:
    settings = Settings()
    synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"), "catalog")
    rng = np.random.default_rng(0)
    clean = []
    for i, text in enumerate(SENTENCES):
        chunks = list(
            synthesizer.synthesize(text, VOICES[i % len(VOICES)], SynthesisOptions(deterministic=True))
        )
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
        clean.append(resample(audio, RATE).samples)
    proc, base, ready = start(dict(os.environ))
    scorer = TextScorer()
    rows: dict[tuple[str, str], tuple[list[str], int]] = defaultdict(lambda: ([], 0))
    try:
        for kind in ("pink", "swelling"):
            for speech in clean:
                stream = mixed(speech, kind, rng)
                for reduction in (None, "near_field", "far_field"):
                    text, starts = anyio.run(heard, base, stream, reduction)
                    texts, false = rows[(kind, reduction or "off")]
                    rows[(kind, reduction or "off")] = ([*texts, text], false + max(0, starts - 1))
        print(f"{len(SENTENCES)} sentences at {SNR_DB:g} dB SNR, /v1/transcribe/ws:")
        for (kind, reduction), (texts, false) in rows.items():
            wer = scorer.wer(list(SENTENCES), texts)
            print(f"  {kind:<9} noise_reduction {reduction:<10} WER {wer:.3f}  false speech_started {false}")
        print(f"server: start -> ready {ready:.2f} s; peak RSS {status(proc.pid, 'VmHWM') / 2**20:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"DeepFilterNet: {cost(settings) * 1000:.0f} ms of CPU per second of audio (one stream)")


if __name__ == "__main__":
    main()
