"""When turns end on `/v1/realtime`, audio sent in real time: sentences spoken in two halves with a
900 ms pause after a word mid-sentence, by four voices, and the same sentences without the pause,
for server VAD (500 ms of silence) and semantic VAD (eagerness auto and high), modes interleaved
per sentence. Counts turns cut at the pause, and for each whole turn the time from the end of speech
(where its sound ends) to its `completed` transcript (p50/p95), with how each turn ended. Then each
server's start → ready and peak RSS. With `--before REV`, that revision's server too, in the same
rounds.

    python benchmarks/turns.py [--pause 0.9] [--recordings] [--before REV]

`--recordings`: the dev set's LibriVox readings (human speech), each paused after its middle word.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from load import start, status
from revisions import revision_env, short
from websockets.asyncio.client import connect

from agent_tools.settings import Settings
from speech_backend import Audio, SynthesisOptions, build_synthesizer, resample, resolve_device

RATE = 24000
CHUNK = RATE // 10  # 100 ms per append, sent in real time
SENTENCES = (
    ("I'd like to book a table for four people on Friday evening.", "for"),
    ("So I was thinking that maybe we could meet on Tuesday.", "could"),
    ("Can you tell me the opening hours of the pharmacy on Main Street?", "the"),
    ("My account number is four seven one nine and I need a new card.", "and"),
    ("I want to change my flight to Boston because of the storm.", "because"),
    ("Please send the invoice to my office address in Chicago.", "to"),
    ("The package should arrive on Thursday but it has not come yet.", "but"),
    ("Could you remind me to call my sister at six tomorrow?", "call"),
)
VOICES = ("en_US-joe-medium", "af_heart", "am_onyx", "bf_emma")
MODES: dict[str, dict[str, Any]] = {
    "server_vad 500 ms": {"type": "server_vad", "silence_duration_ms": 500},
    "semantic_vad auto": {"type": "semantic_vad", "eagerness": "auto"},
    "semantic_vad high": {"type": "semantic_vad", "eagerness": "high"},
}


def utterance(synthesizer: Any, text: str, after: str, voice: str, pause: float) -> tuple[np.ndarray, float]:
    """PCM at 24 kHz: 0.5 s of silence, the sentence with `pause` after the word `after` (none when
    `pause` is 0), 5 s of silence; and where its speech ends (seconds): its last sample above -40 dBFS
    (an engine's last word timing can run on into the silence after it)."""
    chunks = list(synthesizer.synthesize(text, voice, SynthesisOptions(deterministic=True)))
    rate = chunks[0].audio.sample_rate
    words = [w for c in chunks for w in c.words]
    samples = np.concatenate([c.audio.samples for c in chunks])
    cut = int(next(w for w in words if w.text.strip(",.?") == after).end * rate)
    spoken_end = int(np.nonzero(np.abs(samples) > 0.01)[0][-1]) + 1
    lead, gap, tail = (np.zeros(int(s * rate), np.float32) for s in (0.5, pause, 5.0))
    stream = resample(
        Audio(np.concatenate([lead, samples[:cut], gap, samples[cut:spoken_end], tail]), rate), RATE
    )
    return stream.samples, 0.5 + pause + spoken_end / rate


async def one_turn(
    base: str, detection: dict[str, Any], samples: np.ndarray, speech_end: float
) -> dict[str, Any]:
    """Stream one utterance in real time; its turns' end reasons, and end of speech -> completed."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    url = base.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    reasons: list[str] = []
    completed: list[float] = []
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()
        session = {"type": "transcription", "audio": {"input": {"turn_detection": detection}}}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        await ws.recv()
        began = time.perf_counter()

        async def send() -> None:
            for n, offset in enumerate(range(0, len(pcm), CHUNK * 2)):
                await anyio.sleep(max(0.0, began + n * 0.1 - time.perf_counter()))
                event = {
                    "type": "input_audio_buffer.append",
                    "audio": base64.b64encode(pcm[offset : offset + CHUNK * 2]).decode(),
                }
                await ws.send(json.dumps(event))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            with anyio.move_on_after(len(pcm) / 2 / RATE + 1):
                async for message in ws:
                    event = json.loads(message)
                    if event["type"] == "input_audio_buffer.committed":
                        reasons.append(event["reason"])
                    elif event["type"].endswith("transcription.completed"):
                        completed.append(time.perf_counter() - began)
            tg.cancel_scope.cancel()
    return {"reasons": reasons, "latency": completed[-1] - speech_end if completed else None}


def recorded(settings: Settings, pause: float) -> list[tuple[np.ndarray, float]]:
    """The dev set's LibriVox readings (people reading aloud), each with `pause` after its middle
    word (found by Whisper's word timings): 0.5 s of silence before, 5 s after."""
    from evals.devset import MANIFEST
    from speech_backend import AudioLimits, RecognitionOptions, build_recognizer, decode_audio

    folder = Path(os.environ.get("SPEECH_TOOLS_DEVSET", ".cache/devset"))
    recognizer = build_recognizer(settings.engines, resolve_device("cpu"))
    out = []
    for line in (folder / MANIFEST).read_text().splitlines():
        item = json.loads(line)
        if not item["id"].startswith("librivox/"):
            continue
        audio = resample(decode_audio((folder / item["path"]).read_bytes(), AudioLimits()).audio, 16000)
        heard = recognizer.transcribe(audio, RecognitionOptions(language="en", word_timestamps=True))
        words = [w for segment in heard.segments for w in segment.words]
        cut, end = int(words[len(words) // 2 - 1].end * 16000), int(words[-1].end * 16000)
        lead, gap, tail = (np.zeros(int(s * 16000), np.float32) for s in (0.5, pause, 5.0))
        samples = np.concatenate([lead, audio.samples[:cut], gap, audio.samples[cut:end], tail])
        out.append((resample(Audio(samples, 16000), RATE).samples, 0.5 + pause + end / 16000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pause", type=float, default=0.9)
    parser.add_argument(
        "--recordings", action="store_true", help="the dev set's readings, not synthetic speech"
    )
    parser.add_argument("--before", help="a revision whose server is measured too, in the same rounds")
    args = parser.parse_args()
    settings = Settings()
    if args.recordings:
        paused, unpaused = recorded(settings, args.pause), recorded(settings, 0.0)
        labels = [f"reading {n + 1}" for n in range(len(paused))]
    else:
        labels = [f"{after} ({VOICES[i % len(VOICES)]})" for i, (_, after) in enumerate(SENTENCES)]
        synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"), "catalog")
        paused, unpaused = (
            [
                utterance(synthesizer, text, after, VOICES[i % len(VOICES)], pause)
                for i, (text, after) in enumerate(SENTENCES)
            ]
            for pause in (args.pause, 0.0)
        )
    if args.before:
        with revision_env(args.before) as before:
            envs = {f"before ({short(args.before)})": before, "now": {}}
            measure(envs, paused, unpaused, labels, args)
    else:
        measure({"now": {}}, paused, unpaused, labels, args)


@dataclass
class Results:
    """What every (server, mode) did: turns cut (paused or not), whole turns' latency, end reasons,
    and which sentences were cut."""

    cut: Counter[tuple[str, str, bool]] = field(default_factory=Counter)
    latencies: dict[tuple[str, str, bool], list[float]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    which: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: tuple[str, str], with_pause: bool, label: str, result: dict[str, Any]) -> None:
        self.ends[key].update(result["reasons"])
        if len(result["reasons"]) > 1:
            self.cut[(*key, with_pause)] += 1
            self.which[key].append(f"{label}{'' if with_pause else ' unpaused'}")
        elif result["latency"] is not None:
            self.latencies[(*key, with_pause)].append(result["latency"])


def measure(
    envs: dict[str, dict[str, str]], paused: list[Any], unpaused: list[Any], labels: list[str], args: Any
) -> None:
    """Every mode of every server on each sentence in turn, paused and not; then the tables."""
    servers = {name: start({**os.environ, **env}) for name, env in envs.items()}
    results = Results()
    try:
        for material, with_pause in ((paused, True), (unpaused, False)):
            for label, (samples, speech_end) in zip(labels, material, strict=True):
                for name, (_, base, _) in servers.items():
                    for mode, detection in MODES.items():
                        result = anyio.run(one_turn, base, detection, samples, speech_end)
                        results.add((name, mode), with_pause, label, result)
        report(results, list(servers), len(paused), args)
        for name, (proc, _, ready) in servers.items():
            rss = status(proc.pid, "VmHWM") / 2**20
            print(f"  {name}: start -> ready {ready:.2f} s; peak RSS {rss:.0f} MB")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=60)


def report(results: Results, servers: list[str], count: int, args: Any) -> None:
    what = "recorded readings" if args.recordings else "sentences"
    print(
        f"{count} {what} with a {args.pause * 1000:.0f} ms pause mid-sentence, and without it; "
        "audio in real time; end of speech -> completed of whole turns, p50 (p95):"
    )
    print(
        f"  {'server':<20}{'mode':<20}{'cut at the pause':<18}{'paused, whole':<22}{'unpaused':<22}ended by"
    )
    for name in servers:
        for mode in MODES:
            rows = [spread(results.latencies[name, mode, p]) for p in (True, False)]
            split = results.cut[name, mode, False]
            unpaused = rows[1] + (f", {split} split " if split else "")
            cut = f"{results.cut[name, mode, True]}/{count}"
            print(
                f"  {name:<20}{mode:<20}{cut:<18}{rows[0]:<22}{unpaused:<22}{dict(results.ends[name, mode])}"
            )
    for (name, mode), cuts in results.which.items():
        if not mode.startswith("server_vad"):
            print(f"  {name}, {mode}: cut or split {', '.join(cuts)}")


def spread(values: list[float]) -> str:
    if not values:
        return "none whole"
    return f"{statistics.median(values):.2f} s ({np.percentile(values, 95):.2f})"


if __name__ == "__main__":
    main()
