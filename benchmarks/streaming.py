"""Time to first audio: streamed speech (`/v1/speak/stream`) against the whole-clip call, and the
streamed p50/p95 with 1, 2 and 4 concurrent streams. Server in a subprocess on loopback.

    python benchmarks/streaming.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
import httpx2
from timing import NEWS
from tool_calls import run_with_server


async def first_audio_streamed(http: httpx2.AsyncClient, base: str) -> float:
    start = time.perf_counter()
    first = None
    async with http.stream("POST", f"{base}/v1/speak/stream", json={"text": NEWS}) as response:
        async for line in response.aiter_lines():  # read to the end, so the load stays realistic
            if first is None and line.startswith("event: audio"):
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream sent no audio")
    return first


async def whole_clip(http: httpx2.AsyncClient, base: str) -> float:
    start = time.perf_counter()
    response = await http.post(f"{base}/v1/audio/speech", json={"input": NEWS, "response_format": "wav"})
    response.raise_for_status()
    return time.perf_counter() - start


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def run(base: str, rounds: int) -> None:
    async with httpx2.AsyncClient(timeout=120) as http:
        await first_audio_streamed(http, base)
        streamed = [await first_audio_streamed(http, base) for _ in range(rounds)]
        whole = [await whole_clip(http, base) for _ in range(rounds)]
        print(f"rounds={rounds}; text of {len(NEWS)} characters (6 sentences)")
        s50, w50 = statistics.median(streamed), statistics.median(whole)
        print(
            f"time to first audio, 1 client: streamed p50 {s50:.3f} s, "
            f"whole clip p50 {w50:.3f} s ({w50 / s50:.1f}x)"
        )
        print("streams   TTFA p50   TTFA p95")
        for streams in (1, 2, 4):
            samples: list[float] = []

            async def one(into: list[float]) -> None:
                into.append(await first_audio_streamed(http, base))

            for _ in range(rounds):
                async with anyio.create_task_group() as tg:
                    for _ in range(streams):
                        tg.start_soon(one, samples)
            print(f"{streams:>7}   {statistics.median(samples):>7.3f} s  {p95(samples):>7.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    run_with_server(run, parser.parse_args().rounds)


if __name__ == "__main__":
    main()
