"""Listened turns: speech made with the `speak` tool (its words timed), a pause put after one word,
noise mixed in, streamed to `/v1/transcribe/ws` as a caller's microphone would send it; what comes
back is how many turns the speech made, why each ended, how long after the end of speech the last
one ended (in stream time: the silence the endpointing waited through), and the text heard."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from evals.client import EvalClient, Outcome
from evals.scenario import ListenArgs, Noise
from speech_backend import AudioLimits, decode_audio, resample

RATE = 16000
BEFORE, AFTER = 0.5, 5.0  # seconds of silence (or noise) around the speech


def noise(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise, or white noise swelling and fading three times a second."""
    white = rng.standard_normal(samples)
    if kind == "pink":
        spectrum = np.fft.rfft(white) / np.sqrt(np.maximum(np.arange(samples // 2 + 1), 1))
        shaped: np.ndarray = np.fft.irfft(spectrum, samples)
        return shaped.astype(np.float32)
    return (white * (0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * np.arange(samples) / RATE))).astype(np.float32)


def mix(stream: np.ndarray, speech: np.ndarray, spec: Noise) -> np.ndarray:
    """`stream` with noise at `spec.snr_db` below the speech's level (over its voiced samples)."""
    hum = noise(spec.kind, len(stream), np.random.default_rng(0))
    voiced = speech[np.abs(speech) > 0.01]
    gain = np.sqrt(np.mean(voiced**2) / np.mean(hum**2) / 10 ** (spec.snr_db / 10))
    mixed: np.ndarray = np.clip(stream + gain * hum, -1, 1).astype(np.float32)
    return mixed


async def listen(client: EvalClient, args: ListenArgs) -> Outcome:
    """Speak, shape the stream, listen to it; an Outcome whose `structured` holds `text`, `turns`,
    `reasons` and `end_ms`."""
    spoken = await client.call("speak", {**args.speak.model_dump(), "format": "wav"})
    if not spoken.ok or spoken.audio is None:
        return spoken
    speech = resample(decode_audio(spoken.audio, AudioLimits()).audio, RATE).samples
    words = spoken.structured.get("words") or []
    speech_end = _last_sound(speech)
    if args.pause_after is not None:
        word = next((w for w in words if w["text"].strip(",.?!") == args.pause_after), None)
        if word is None:
            return Outcome(False, "setup", f"the speech has no word {args.pause_after!r} to pause after")
        cut = int(float(word["end"]) * RATE)
        speech = np.concatenate(
            [speech[:cut], np.zeros(args.pause_ms * RATE // 1000, np.float32), speech[cut:]]
        )
        speech_end += args.pause_ms / 1000
    silence = np.zeros(int(RATE * BEFORE), np.float32), np.zeros(int(RATE * AFTER), np.float32)
    stream = np.concatenate([silence[0], speech, silence[1]])
    if args.noise is not None:
        stream = mix(stream, speech, args.noise)
    started = time.perf_counter()
    events = await _stream(client, args, (stream * 32767).astype("<i2").tobytes())
    stops = [e for e in events if e["type"] == "speech_stopped"]
    finals = [e["text"] for e in events if e["type"] == "final"]
    structured: dict[str, Any] = {
        "text": " ".join(finals),
        "turns": len(stops),
        "reasons": [e["reason"] for e in stops],
        "end_ms": round((stops[-1]["decided"] - BEFORE - speech_end) * 1000) if stops else None,
    }
    failed = next((e for e in events if e["type"] == "error"), None)
    if failed is not None:
        return Outcome(False, failed.get("code"), failed.get("message", ""), structured)
    return Outcome(True, structured=structured, latency_s=time.perf_counter() - started)


def _last_sound(speech: np.ndarray) -> float:
    """Where the speech's sound ends (seconds): the last 10 ms within 40 dB of its loudest."""
    frames = speech[: len(speech) // 160 * 160].reshape(-1, 160)
    level = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.nonzero(level > level.max() / 100)[0]
    return float((loud[-1] + 1) * 160 / RATE) if len(loud) else 0.0


async def _stream(client: EvalClient, args: ListenArgs, pcm: bytes) -> list[dict[str, Any]]:
    query = {"sample_rate": str(RATE), "turn_detection": args.turn_detection}
    for name in ("eagerness", "min_silence_ms", "noise_reduction"):
        if getattr(args, name) is not None:
            query[name] = str(getattr(args, name))
    url = client.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/v1/transcribe/ws"
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else None
    events: list[dict[str, Any]] = []
    async with connect(
        url + "?" + "&".join(f"{k}={v}" for k, v in query.items()), additional_headers=headers
    ) as ws:
        ready = json.loads(await ws.recv())
        if ready["type"] == "error":
            return [ready]
        for offset in range(0, len(pcm), RATE // 5):  # 100 ms frames, as fast as they go
            await ws.send(pcm[offset : offset + RATE // 5])
        await ws.send(json.dumps({"type": "end"}))
        async for message in ws:
            events.append(json.loads(message))
            if events[-1]["type"] in ("done", "error"):
                break
    return events
