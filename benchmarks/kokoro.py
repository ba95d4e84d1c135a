"""Kokoro beside Piper on this CPU, in one interleaved run: raw Kokoro (the int8 model run directly on
onnxruntime, one call per sentence) and ours (`KokoroSynthesizer`: the first sentence whole, and with
the lead-in), Piper's first sentence the same way; time to first audio, real-time factor over a whole
text, medians of rounds; then the server's start → ready and its peak RSS once both engines and both
recognizers have served.

    python benchmarks/kokoro.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx2
import numpy as np
from load import status
from timing import NEWS
from tool_calls import free_port, start_server

from agent_tools.settings import Settings
from speech_backend import (
    SynthesisOptions,
    build_synthesizer,
    resolve_device,
)
from speech_backend.kokoro.files import SAMPLE_RATE, joined_model, vocabulary
from speech_backend.piper.espeak import phonemize
from speech_backend.text import normalize_text, split_sentences

VOICE, PIPER = "af_heart", "en_US-joe-medium"
FIRST = "Good evening, and welcome to the late news from the city."


class RawKokoro:
    """The model on onnxruntime, the way kokoro-onnx runs it: phonemes in, audio out."""

    def __init__(self, settings: Settings) -> None:
        import onnxruntime

        model = joined_model(settings.engines.cache_dir)
        assert model is not None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.vocab = vocabulary()
        voices = settings.engines.cache_dir / "kokoro-voices"
        self.style = np.fromfile(voices / f"{VOICE}.bin", dtype="<f4").reshape(-1, 256)

    def sentence(self, text: str) -> np.ndarray:
        phonemes = [self.vocab[p] for p in phonemize("en-us", text) if p in self.vocab]
        feed = {
            "tokens": np.array([[0, *phonemes, 0]], dtype=np.int64),
            "style": self.style[len(phonemes)][None, :],
            "speed": np.ones(1, dtype=np.float32),
        }
        return np.asarray(self.session.run(None, feed)[0]).reshape(-1)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    cpu = resolve_device("cpu")
    raw = RawKokoro(settings)
    ours = build_synthesizer(settings.engines, cpu, "catalog")
    ours.load(VOICE)
    ours.load(PIPER)
    whole, lead = SynthesisOptions(deterministic=True), SynthesisOptions(deterministic=True, lead_in_words=5)
    first_of = lambda voice, options: next(iter(ours.synthesize(FIRST, voice, options)))  # noqa: E731
    rows: dict[str, list[float]] = {k: [] for k in ("raw", "whole", "lead", "piper whole", "piper lead")}
    rtf: dict[str, list[float]] = {"raw": [], "ours": [], "piper": []}
    sentences = split_sentences(normalize_text(NEWS), 180)
    for _ in range(args.rounds):  # every row in every round, interleaved
        rows["raw"].append(timed(lambda: raw.sentence(FIRST)))
        rows["whole"].append(timed(lambda: first_of(VOICE, whole)))
        rows["lead"].append(timed(lambda: first_of(VOICE, lead)))
        rows["piper whole"].append(timed(lambda: first_of(PIPER, whole)))
        rows["piper lead"].append(timed(lambda: first_of(PIPER, lead)))
        start = time.perf_counter()
        seconds = sum(len(raw.sentence(s)) for s in sentences) / SAMPLE_RATE
        rtf["raw"].append((time.perf_counter() - start) / seconds)
        for name, voice in (("ours", VOICE), ("piper", PIPER)):
            start = time.perf_counter()
            seconds = sum(c.audio.duration for c in ours.synthesize(NEWS, voice, whole))
            rtf[name].append((time.perf_counter() - start) / seconds)
    raw_first = statistics.median(rows["raw"])
    print(f"time to first audio, medians of {args.rounds} rounds (ms; x raw Kokoro's first sentence):")
    for name, samples in rows.items():
        median = statistics.median(samples)
        print(f"  {name:<12} {median * 1000:6.0f}  ({median / raw_first:.2f})")
    print("real-time factor over the news text (engine seconds per audio second, median):")
    for name, samples in rtf.items():
        print(f"  {name:<12} {statistics.median(samples):.3f}")
    server_memory()


def server_memory() -> None:
    """Start -> ready of the server, then its peak RSS once both engines and both recognizers served."""
    port = free_port()
    started = time.perf_counter()
    server = start_server(port)
    ready = time.perf_counter() - started
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=base, timeout=120) as http:
            for voice, text, language in (
                (VOICE, FIRST, "en"),
                ("ef_dora", "El tren sale a las ocho.", "es"),
                ("jf_alpha", "明日の会議は午後三時に始まります。", "ja"),
                ("zf_xiaobei", "明天的会议下午三点开始。", "zh"),
            ):
                wav = http.post(
                    "/v1/audio/speech", json={"input": text, "voice": voice, "response_format": "wav"}
                )
                files = {"file": ("a.wav", wav.content)}
                http.post(
                    "/v1/audio/transcriptions", files=files, data={"language": language}
                ).raise_for_status()
            http.post("/v1/audio/speech", json={"input": NEWS, "voice": PIPER}).raise_for_status()
        peak = status(server.pid, "VmHWM") / 1024 / 1024
        print(f"server: start -> ready {ready:.2f} s (Kokoro loads on first use); peak RSS with both engines")
        print(f"  and both recognizers used (Kokoro en, es, ja, zh heard back; Piper): {peak:.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
