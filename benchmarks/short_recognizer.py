"""Moonshine tiny-en (live finals) against Whisper tiny.en (the default recognizer) on the same
audio: the dev set's recordings up to 9 s (people reading aloud, cards read out) and sentences
spoken by four voices of both engines; word error rate (Whisper's normalisation) and median
recognition time, one thread each, in the same run.

    python benchmarks/short_recognizer.py [--devset .cache/devset]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from live import UTTERANCES

from agent_tools.settings import Settings
from evals.metrics import TextScorer
from speech_backend import (
    Audio,
    AudioLimits,
    RecognitionOptions,
    SynthesisOptions,
    build_recognizer,
    build_synthesizer,
    decode_audio,
    resample,
    resolve_device,
)
from speech_backend.moonshine.recognizer import MAX_SECONDS, MoonshineRecognizer
from speech_backend.protocols import Recognizer

SENTENCES = (
    *UTTERANCES,
    "I'd like to book a table for four people at seven.",
    "Remind me to call my mother tomorrow afternoon.",
    "How long does it take to drive to the airport?",
)
VOICES = ("en_US-joe-medium", "af_heart", "am_michael", "bf_emma")


def score(
    recognizer: Recognizer, clips: list[tuple[Audio, str]], options: RecognitionOptions
) -> tuple[float, float]:
    """WER over `clips` and the median seconds per clip."""
    heard, seconds = [], []
    for audio, _ in clips:
        started = time.perf_counter()
        heard.append(recognizer.transcribe(audio, options).text)
        seconds.append(time.perf_counter() - started)
    return TextScorer().wer([text for _, text in clips], heard), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devset", type=Path, default=Path(".cache/devset"))
    args = parser.parse_args()
    settings = Settings().engines
    device = resolve_device("cpu")
    moonshine = MoonshineRecognizer(settings.cache_dir)
    moonshine.load()
    whisper = build_recognizer(settings, device, "whisper")
    recorded = []
    for line in (args.devset / "manifest.jsonl").read_text().splitlines():
        item = json.loads(line)
        audio = decode_audio((args.devset / item["path"]).read_bytes(), AudioLimits(), 16000).audio
        if audio.duration <= MAX_SECONDS:
            recorded.append((audio, item["reference"]))
    synthesizer = build_synthesizer(settings, device, "catalog")
    spoken = []
    for voice in VOICES:
        for text in SENTENCES:
            chunks = list(synthesizer.synthesize(text, voice, SynthesisOptions(deterministic=True)))
            samples = np.concatenate([c.audio.samples for c in chunks])
            spoken.append((resample(Audio(samples, chunks[0].audio.sample_rate), 16000), text))
    for name, clips in (("dev set recordings <= 9 s", recorded), ("synthetic, 4 voices", spoken)):
        m_wer, m_time = score(moonshine, clips, RecognitionOptions())
        w_wer, w_time = score(whisper, clips, RecognitionOptions(word_timestamps=True))
        print(
            f"{name} ({len(clips)} clips): Moonshine WER {m_wer:.3f}, {m_time * 1000:.0f} ms; "
            f"Whisper tiny.en (beam 5, words) WER {w_wer:.3f}, {w_time * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
