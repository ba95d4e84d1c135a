"""Whether early first audio is seamless: held-out texts spoken by the server as it is (a short
lead-in made on its own, then joined to the rest of the first sentence) and by the same build with
the first sentence made whole (`SERVICE__LEAD_IN_WORDS=0`), both with deterministic synthesis,
through `/v1/audio/speech` (a streamed call, so the lead-in applies), and heard back by Whisper
(tiny.en, as `make run` serves English). Corpus WER per voice and in all, each server's; the goal is
the lead-in's within 0.01 of the whole first sentence's.

    python benchmarks/lead_in.py [--voices en_US-joe-medium,af_heart]
"""

from __future__ import annotations

import argparse
import io
import os
import wave
from typing import Any

import httpx2
import numpy as np
from load import start

from agent_tools.settings import Settings
from evals.metrics import Scorers
from speech_backend import Audio, RecognitionOptions, build_recognizer, resample, resolve_device

# Held out: none of these is in the tests, the eval scenarios or another benchmark. Each opens with a
# sentence long enough for a lead-in (more than five words, or a clause before a comma). The first six
# showed that a number said on its own at a lead-in's end ("play two,") is heard as "too"; the rule
# that followed (`speech_backend.text`) was then checked on the last six.
TEXTS = (
    "The museum on the hill reopens next spring after two years of repairs. Tickets go on sale in March.",
    "If the weather holds, the ferry leaves at a quarter to eight. Bring a warm coat for the crossing.",
    "Our neighbour grows tomatoes, beans and three kinds of pumpkin in her small garden. She gives "
    "most of them away.",
    "Before you sign the lease, read the part about repairs twice. Ask the landlord who pays for the boiler.",
    "The orchestra will play two symphonies and a short piece by a young composer from Oslo. The "
    "concert ends around ten.",
    "Most of the letters arrived a week late because the sorting office flooded. Nobody lost any post.",
    "The bakery on the corner sells three kinds of rye bread every morning except Sunday. It opens at six.",
    "My grandfather kept a small boat in the harbour for almost forty years. He sold it last autumn.",
    "When the power failed, the whole street went dark for nearly an hour. The shops closed early.",
    "Several students asked whether the library could stay open during the exam weeks. The answer was yes.",
    "The new bridge will carry two lanes of traffic and a wide path for bicycles. Work starts in June.",
    "She finished the marathon in just under four hours despite the heat. Her sister ran beside her.",
)
SERVERS = {
    "lead-in (as served)": {},
    "first sentence whole": {"SPEECH_TOOLS_SERVICE__LEAD_IN_WORDS": "0"},
}


def spoken(base: str, text: str, voice: str) -> Audio:
    body = {"model": "tts-1", "voice": voice, "input": text, "response_format": "wav"}
    response = httpx2.post(f"{base}/v1/audio/speech", json=body, timeout=120)
    response.raise_for_status()
    with wave.open(io.BytesIO(response.content)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return Audio(pcm.astype(np.float32) / np.float32(32768), wav.getframerate())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voices", default="en_US-joe-medium,af_heart", help="comma-separated voice ids")
    parser.add_argument("--show", action="store_true", help="print what was heard where the servers differ")
    args = parser.parse_args()
    settings = Settings()
    recognizer = build_recognizer(settings.engines, resolve_device("cpu"))
    scorers = Scorers()
    deterministic = {"SPEECH_TOOLS_SERVICE__DETERMINISTIC_SPEECH": "true"}
    servers: dict[str, Any] = {
        name: start({**os.environ, **deterministic, **env}) for name, env in SERVERS.items()
    }
    try:
        heard: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        differs = 0
        for voice in args.voices.split(","):
            for text in TEXTS:
                clips = {name: spoken(base, text, voice) for name, (_, base, _) in servers.items()}
                first, second = clips.values()
                differs += first.samples.shape != second.samples.shape or not np.array_equal(
                    first.samples, second.samples
                )
                for name, audio in clips.items():
                    said = recognizer.transcribe(resample(audio, 16000), RecognitionOptions(language="en"))
                    heard.setdefault((name, voice), []).append((text, said.text, "en"))
        if args.show:
            show(heard, args.voices.split(","))
        print(
            f"{len(TEXTS)} held-out texts per voice; {differs} of {len(heard) // 2 * len(TEXTS)} clips differ"
        )
        print(f"  {'server':<24}" + "".join(f"{v:<20}" for v in args.voices.split(",")) + "all")
        for name in SERVERS:
            per_voice = [scorers.wer(heard[name, v]) for v in args.voices.split(",")]
            every = scorers.wer([t for v in args.voices.split(",") for t in heard[name, v]])
            print(f"  {name:<24}" + "".join(f"{w:<20.3f}" for w in per_voice) + f"{every:.3f}")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=60)


def show(heard: dict[tuple[str, str], list[tuple[str, str, str]]], voices: list[str]) -> None:
    """What each server's clip was heard as, where the two differ."""
    names = list(SERVERS)
    for voice in voices:
        pairs = zip(heard[names[0], voice], heard[names[1], voice], strict=True)
        for (text, one, _), (_, other, _) in pairs:
            if one != other:
                print(f"{voice}: {text}\n  {names[0]}: {one}\n  {names[1]}: {other}")


if __name__ == "__main__":
    main()
