"""Time to first audio: streamed speech (`/v1/speak/stream`), OpenAI's `/v1/audio/speech` (time to
its first byte and to its last, as pcm and mp3), and the streamed p50/p95 with 1, 2 and 4
concurrent streams. Server in a subprocess on loopback.

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


async def first_audio_streamed(http: httpx2.AsyncClient, base: str, text: str = NEWS) -> float:
    start = time.perf_counter()
    first = None
    async with http.stream("POST", f"{base}/v1/speak/stream", json={"text": text}) as response:
        async for line in response.aiter_lines():  # read to the end, so the load stays realistic
            if first is None and line.startswith("event: audio"):
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream sent no audio")
    return first


async def openai_speech(http: httpx2.AsyncClient, base: str, fmt: str) -> tuple[float, float]:
    """Seconds to the first byte of `/v1/audio/speech`'s body, and to its last."""
    start = time.perf_counter()
    first = None
    body = {"model": "tts-1", "voice": "alloy", "input": NEWS, "response_format": fmt}
    async with http.stream("POST", f"{base}/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            if first is None and chunk:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the response had no body")
    return first, time.perf_counter() - start


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def run(base: str, rounds: int) -> None:
    async with httpx2.AsyncClient(timeout=120) as http:
        await first_audio_streamed(http, base)
        streamed = [await first_audio_streamed(http, base) for _ in range(rounds)]
        print(f"rounds={rounds}; text of {len(NEWS)} characters (6 sentences)")
        print(f"time to first audio, 1 client: /v1/speak/stream p50 {statistics.median(streamed):.3f} s")
        for fmt in ("pcm", "mp3"):
            timings = [await openai_speech(http, base, fmt) for _ in range(rounds)]
            first = statistics.median(t[0] for t in timings)
            last = statistics.median(t[1] for t in timings)
            print(f"/v1/audio/speech {fmt}: first byte p50 {first:.3f} s, last byte p50 {last:.3f} s")
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
