"""Time to first audio and speech throughput, in one interleaved run: raw Piper's first sentence
(in this process, measured in the same rounds), the server before this scheduler (`--before`, a
worktree of that revision), the server now with the first sentence made whole
(`SERVICE__LEAD_IN_WORDS=0`) and as it is (a short lead-in first), and, with `--peer-python`,
wyoming-piper on the same voice (`make bench-peers`). Each server runs in its own subprocess;
rounds visit every server in turn, each round starting with the next one, so a noisy moment hits
all of them alike.

Rows: 1 client on texts of about 3, 9 and 43 s of speech; 4 and 8 concurrent clients on the 9 s
text (median [p95, max]); throughput (seconds of audio delivered per second, reading each stream to
its end) with 1, 2 and 4 clients.

    python benchmarks/first_audio.py [--rounds N] [--before REV] [--also LABEL:KEY=VALUE,...]
        [--peer-python PY]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import httpx2
from peers import start_peer, wyoming_first_audio
from revisions import BEFORE_SCHEDULER, labelled_settings, revision_env, short
from streaming import first_audio_streamed, p95
from timing import NEWS
from tool_calls import free_port, start_server

from agent_tools.settings import Settings
from speech_backend import SynthesisOptions, build_synthesizer, resolve_device

SHORT = "Your table for four is booked for seven thirty tonight."
MEDIUM = ". ".join(NEWS.split(". ")[:3]) + "."
LONG = f"{NEWS} {NEWS}"
TEXTS = {"short": SHORT, "medium": MEDIUM, "long": LONG}
CONCURRENT = (4, 8)
THROUGHPUT = (1, 2, 4)

Measure = Callable[[str], Awaitable[float]]


@dataclass
class Samples:
    """What one server measured over the rounds."""

    single: dict[str, list[float]] = field(default_factory=dict)
    concurrent: dict[int, list[float]] = field(default_factory=dict)
    throughput: dict[int, list[float]] = field(default_factory=dict)


class RawPiper:
    """Raw Piper in this process (the default voice, loaded): its first sentence of a text."""

    def __init__(self) -> None:
        settings = Settings()
        self.synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"))
        self.voice = settings.engines.piper.default_voice
        self.synthesizer.load(self.voice)

    def first_sentence(self, text: str) -> float:
        """Seconds to the first sentence of `text`."""
        start = time.perf_counter()
        next(iter(self.synthesizer.synthesize(text, self.voice, SynthesisOptions())))
        return time.perf_counter() - start

    def seconds(self, text: str) -> float:
        """Seconds of audio `text` makes."""
        return sum(
            c.audio.duration for c in self.synthesizer.synthesize(text, self.voice, SynthesisOptions())
        )


async def at_once(measure: Measure, text: str, clients: int) -> tuple[list[float], float]:
    """`clients` calls at the same moment: each one's time to first audio, and the wall time of all."""
    samples: list[float] = []

    async def one() -> None:
        samples.append(await measure(text))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
    return samples, time.perf_counter() - start


async def run(servers: dict[str, Measure], piper: RawPiper, rounds: int) -> None:
    got = {name: Samples() for name in servers}
    length = {name: piper.seconds(text) for name, text in TEXTS.items()}
    raw_samples: dict[str, list[float]] = {name: [] for name in TEXTS}
    for measure in servers.values():
        await measure(SHORT)  # warm
    names = list(servers)
    for round_ in range(rounds):
        for text_name, text in TEXTS.items():  # raw Piper in the same rounds, while the servers idle
            raw_samples[text_name].append(await anyio.to_thread.run_sync(piper.first_sentence, text))
        # Each round starts with the next server: whoever comes right after another's heaviest row
        # (8 clients) meets a busier machine, and that must not always be the same server.
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            measure, samples = servers[name], got[name]
            for text_name, text in TEXTS.items():
                samples.single.setdefault(text_name, []).append(await measure(text))
            for clients in CONCURRENT:
                firsts, _ = await at_once(measure, MEDIUM, clients)
                samples.concurrent.setdefault(clients, []).extend(firsts)
            for clients in THROUGHPUT:
                _, wall = await at_once(measure, MEDIUM, clients)
                samples.throughput.setdefault(clients, []).append(clients * length["medium"] / wall)
    raw = {name: statistics.median(values) for name, values in raw_samples.items()}
    report(got, raw, length, rounds)


def report(got: dict[str, Samples], raw: dict[str, float], length: dict[str, float], rounds: int) -> None:
    width = max(len(name) for name in got) + 2
    print(f"time to first audio: medians of {rounds} interleaved rounds, ms (x raw Piper's first sentence)")
    lengths = " / ".join(f"{n} {length[n]:.0f} s" for n in TEXTS)
    print(f"  1 client ({lengths}):")
    print(f"    {'raw Piper first sentence':<{width}}" + " / ".join(f"{raw[n] * 1000:.0f}" for n in TEXTS))
    for name, samples in got.items():
        values = [statistics.median(samples.single[n]) for n in TEXTS]
        line = " / ".join(f"{v * 1000:.0f} ({v / raw[n]:.2f})" for v, n in zip(values, TEXTS, strict=True))
        print(f"    {name:<{width}}{line}")
    for clients in CONCURRENT:
        print(f"  {clients} clients at once, {length['medium']:.0f} s of speech each: median [p95, max] ms")
        for name, samples in got.items():
            values = samples.concurrent[clients]
            print(
                f"    {name:<{width}}{statistics.median(values) * 1000:.0f} [{p95(values) * 1000:.0f}, "
                f"{max(values) * 1000:.0f}]  (p95 {p95(values) / raw['medium']:.2f}x raw)"
            )
    print("speech throughput, seconds of audio per second (median over rounds), 1 / 2 / 4 clients:")
    for name, samples in got.items():
        line = " / ".join(f"{statistics.median(samples.throughput[c]):.1f}" for c in THROUGHPUT)
        print(f"    {name:<{width}}{line}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--before", default=BEFORE_SCHEDULER, help="revision measured as 'before'")
    parser.add_argument("--also", action="append", default=[], help="LABEL:KEY=VALUE,... (repeatable)")
    parser.add_argument("--peer-python", help="python of a virtualenv with wyoming-piper (make bench-peers)")
    args = parser.parse_args()
    piper = RawPiper()
    with ExitStack() as stack:
        before = stack.enter_context(revision_env(args.before))
        configs = {
            f"before ({short(args.before)})": before,
            "now, first sentence whole": {"SPEECH_TOOLS_SERVICE__LEAD_IN_WORDS": "0"},
            "now": {},
        }
        configs.update(labelled_settings(extra) for extra in args.also)
        procs = []
        urls: dict[str, str] = {}
        for name, env in configs.items():
            port = free_port()
            procs.append(start_server(port, env))
            urls[name] = f"http://127.0.0.1:{port}"
        peer_port = 0
        if args.peer_python:
            peer_port = free_port()
            procs.append(start_peer(args.peer_python, peer_port))
        for proc in procs:
            stack.callback(proc.wait, 60)
            stack.callback(proc.terminate)

        async def measure_all() -> None:
            async with httpx2.AsyncClient(timeout=300) as http:
                servers: dict[str, Measure] = {
                    name: (lambda text, base=base: first_audio_streamed(http, base, text))
                    for name, base in urls.items()
                }
                if peer_port:
                    servers["wyoming-piper"] = lambda text: wyoming_first_audio(peer_port, text)
                await run(servers, piper, args.rounds)

        anyio.run(measure_all)


if __name__ == "__main__":
    main()
