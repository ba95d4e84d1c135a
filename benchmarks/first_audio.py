"""Time to first audio of streamed speech against raw Piper's first sentence, in one interleaved run:
the server as it was (the first sentence made whole: `SERVICE__LEAD_IN_WORDS=0`) and as it is (a
short lead-in first), each in its own subprocess, on texts of about 2, 10 and 50 s of speech, with
1 and 4 concurrent clients (medians, p95 in brackets).

    python benchmarks/first_audio.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx2
from streaming import first_audio_streamed, p95
from timing import NEWS
from tool_calls import free_port, start_server

from agent_tools.settings import Settings
from speech_backend import SynthesisOptions, build_synthesizer, resolve_device

SHORT = "Your table for four is booked for seven thirty tonight."
MEDIUM = ". ".join(NEWS.split(". ")[:3]) + "."
LONG = f"{NEWS} {NEWS}"
TEXTS = {"short": SHORT, "medium": MEDIUM, "long": LONG}


def raw_first_sentence(rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Raw Piper in this process: seconds to its first sentence, and each text's audio seconds."""
    settings = Settings()
    synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"))
    voice = settings.engines.piper.default_voice
    synthesizer.load(voice)
    first: dict[str, float] = {}
    length: dict[str, float] = {}
    for name, text in TEXTS.items():
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            next(iter(synthesizer.synthesize(text, voice, SynthesisOptions())))
            times.append(time.perf_counter() - start)
        first[name] = statistics.median(times)
        length[name] = sum(c.audio.duration for c in synthesizer.synthesize(text, voice, SynthesisOptions()))
    return first, length


async def at_once(measure: Callable[[], Awaitable[float]], clients: int) -> list[float]:
    samples: list[float] = []

    async def one() -> None:
        samples.append(await measure())

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
    return samples


async def run(servers: dict[str, str], raw: dict[str, float], length: dict[str, float], rounds: int) -> None:
    single: dict[tuple[str, str], list[float]] = {}
    four: dict[str, list[float]] = {}
    async with httpx2.AsyncClient(timeout=300) as http:
        for base in servers.values():
            await first_audio_streamed(http, base, SHORT)  # warm
        for _ in range(rounds):
            for name, base in servers.items():
                for text_name, text in TEXTS.items():
                    sample = await first_audio_streamed(http, base, text)
                    single.setdefault((name, text_name), []).append(sample)

                async def medium(base: str = base) -> float:
                    return await first_audio_streamed(http, base, MEDIUM)

                four.setdefault(name, []).extend(await at_once(medium, 4))
    print(f"time to first audio, medians of {rounds} interleaved rounds [p95 at 4 clients]")
    header = " / ".join(f"{n} {length[n]:.0f} s" for n in TEXTS)
    print(f"  1 client ({header}):")
    print("    raw Piper first sentence: " + " / ".join(f"{raw[n] * 1000:.0f}" for n in TEXTS) + " ms")
    for name in servers:
        values = [statistics.median(single[(name, n)]) for n in TEXTS]
        ratios = " / ".join(f"{v / raw[n]:.2f}" for v, n in zip(values, TEXTS, strict=True))
        line = " / ".join(f"{v * 1000:.0f}" for v in values)
        print(f"    {name}: {line} ms (x raw: {ratios})")
    print(f"  4 clients, {length['medium']:.0f} s of speech each:")
    for name in servers:
        samples = four[name]
        ratio = p95(samples) / raw["medium"]
        print(
            f"    {name}: {statistics.median(samples) * 1000:.0f} [{p95(samples) * 1000:.0f}] ms "
            f"(p95 x raw first sentence: {ratio:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    raw, length = raw_first_sentence(args.rounds)
    ports = {"whole first sentence": free_port(), "lead-in first": free_port()}
    procs = [
        start_server(ports["whole first sentence"], {"SPEECH_TOOLS_SERVICE__LEAD_IN_WORDS": "0"}),
        start_server(ports["lead-in first"]),
    ]
    try:
        servers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        anyio.run(run, servers, raw, length, args.rounds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
