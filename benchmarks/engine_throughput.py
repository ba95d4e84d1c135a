"""Two engines on one machine's cores: speech made per second of wall time through
`/v1/audio/speech` at 1, 2 and 4 clients, for Piper alone (a server without Kokoro's voices),
Piper and Kokoro each on a server with both, and both at once (half the clients each), in
interleaved rounds; each client sends its requests back to back. Then both servers' start -> ready
and peak RSS.

    python benchmarks/engine_throughput.py [--rounds N] [--requests N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import wave
from collections import defaultdict

import anyio
import httpx2
from load import reset_peak, start, status

PIPER, KOKORO = "en_US-joe-medium", "af_heart"
TEXT = (
    "Good evening, and welcome to the late news from the city. The council met this afternoon to "
    "discuss the new bus routes, and most members agreed to try them for a year."
)


async def client(base: str, voice: str, requests: int, latencies: list[float]) -> float:
    """Seconds of speech made by `requests` calls in a row."""
    made = 0.0
    async with httpx2.AsyncClient(base_url=base, timeout=300) as http:
        for _ in range(requests):
            started = time.perf_counter()
            body = {"model": "tts-1", "input": TEXT, "voice": voice, "response_format": "wav"}
            response = await http.post("/v1/audio/speech", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            with wave.open(io.BytesIO(response.content)) as w:  # streamed: the header's length is open
                frame = w.getsampwidth() * w.getnchannels()
                made += (
                    (len(response.content) - response.content.index(b"data") - 8) / frame / w.getframerate()
                )
    return made


async def load(base: str, voices: list[str], requests: int) -> dict[str, tuple[float, float]]:
    """Per voice: seconds of speech per wall second, and the median request latency."""
    made: dict[str, float] = defaultdict(float)
    latencies: dict[str, list[float]] = defaultdict(list)

    async def one(voice: str) -> None:
        seconds = await client(base, voice, requests, latencies[voice])
        made[voice] += seconds  # (not `+= await`: that reads the total before the wait)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for voice in voices:
            tg.start_soon(one, voice)
    wall = time.perf_counter() - started
    return {v: (made[v] / wall, statistics.median(latencies[v])) for v in made}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3, help="per client and measurement")
    args = parser.parse_args()
    empty = tempfile.mkdtemp()
    piper_only, piper_base, piper_ready = start(
        {**os.environ, "SPEECH_TOOLS_ENGINES__KOKORO__VOICES_DIR": empty}
    )
    both, both_base, both_ready = start(dict(os.environ))
    rows: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    cases = {
        "piper, Piper-only server": (piper_base, lambda n: [PIPER] * n),
        "piper, both engines": (both_base, lambda n: [PIPER] * n),
        "kokoro, both engines": (both_base, lambda n: [KOKORO] * n),
        "both at once": (both_base, lambda n: [PIPER, KOKORO] * (n // 2)),
    }
    try:
        for base in (piper_base, both_base):  # warm: each voice loaded and its sessions made
            anyio.run(load, base, [PIPER], 1)
        anyio.run(load, both_base, [KOKORO], 1)
        for pid in (piper_only.pid, both.pid):
            reset_peak(pid)
        for _ in range(args.rounds):
            for clients in (1, 2, 4):
                for name, (base, voices) in cases.items():
                    if voices(clients):
                        for voice, figures in anyio.run(load, base, voices(clients), args.requests).items():
                            rows[(name, clients)][voice].append(figures)
        print(f"speech seconds per wall second (median request latency), medians of {args.rounds} rounds:")
        for (name, clients), by_voice in rows.items():
            cells = ", ".join(
                f"{voice} {statistics.median(r for r, _ in f):5.1f}x "
                f"({statistics.median(latency for _, latency in f):.2f} s)"
                for voice, f in by_voice.items()
            )
            print(f"  {name:<26} {clients} clients: {cells}")
        for label, proc, ready in (
            ("Piper-only", piper_only, piper_ready),
            ("both engines", both, both_ready),
        ):
            peak = status(proc.pid, "VmHWM") / 1024 / 1024
            print(f"{label} server: start -> ready {ready:.2f} s; peak RSS under this load {peak:.0f} MB")
    finally:
        for proc in (piper_only, both):
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
