"""Hostile clients against `speech-tools serve` in a subprocess: the server's memory and a canary's latency.

Each workload runs while a canary client calls `GET /v1/audio/voices` over and over on its own
connection (from a thread of its own); the report gives the server's resident memory before, at
peak and after (sampled from /proc every 50 ms), and the canary's median and slowest latency
during the workload.

- `chunked-<route>`: a 300 MB request body sent chunked (no Content-Length) to a JSON route and to
  the upload route;
- `ws-flood`: 150,000 `text` + `end` pairs sent as fast as the socket takes them on `/v1/speak/ws`,
  then events read for up to 10 s.

    python benchmarks/hostile.py [--megabytes N] [--pairs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import httpx2
from tool_calls import free_port, start_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

MEGABYTE = 1024 * 1024


def rss(pid: int) -> int:
    """Resident memory of process `pid`, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def body(megabytes: int, first: bytes) -> AsyncIterator[bytes]:
    yield first
    block = b"x" * (256 * 1024)
    for _ in range(megabytes * 4):
        yield block


async def chunked(base: str, path: str, megabytes: int) -> str:
    headers, first = {"content-type": "application/json"}, b'{"input": "'
    if path.endswith("transcriptions"):
        headers = {"content-type": "multipart/form-data; boundary=b"}
        first = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    async with httpx2.AsyncClient(timeout=300) as http:
        response = await http.post(f"{base}{path}", content=body(megabytes, first), headers=headers)
    return f"{response.status_code} {response.json()['error']['code']}"


async def ws_flood(base: str, pairs: int) -> str:
    url = base.replace("http://", "ws://") + "/v1/speak/ws"
    code = "-"
    async with connect(url, max_queue=None) as ws:
        await ws.recv()
        try:
            for _ in range(pairs):
                await ws.send(json.dumps({"type": "text", "text": "Hello there. "}))
                await ws.send(json.dumps({"type": "end"}))
            with anyio.move_on_after(10):  # a server that queues it all would speak for hours
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "error":
                        code = event["code"]
        except ConnectionClosed:
            pass
    return f"closed {ws.close_code} {code}" if ws.close_code else "still open after 10 s"


async def measure(base: str, pid: int, name: str, workload: Callable[[], Awaitable[str]]) -> None:
    before = rss(pid)
    peak = before
    latencies: list[float] = []
    done = anyio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            await anyio.sleep(0.05)

    stop = threading.Event()

    def canary() -> None:
        """In a thread of its own, so that the workload's sending does not delay it in this process."""
        with httpx2.Client(timeout=300) as http:
            while not stop.is_set():
                start = time.perf_counter()
                http.get(f"{base}/v1/audio/voices").raise_for_status()
                latencies.append(time.perf_counter() - start)
                stop.wait(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        tg.start_soon(lambda: anyio.to_thread.run_sync(canary))
        started = time.perf_counter()
        outcome = await workload()
        elapsed = time.perf_counter() - started
        done.set()
        stop.set()
    await anyio.sleep(1)
    after = rss(pid)
    canary_ms = (
        f"p50 {statistics.median(latencies) * 1000:>6.1f} ms  max {max(latencies) * 1000:>7.1f} ms"
        if latencies
        else "no sample"
    )
    print(
        f"{name:<30} {outcome:<26} {elapsed:>6.1f} s  RSS {before / MEGABYTE:>5.0f} -> peak "
        f"{peak / MEGABYTE:>5.0f} -> {after / MEGABYTE:>5.0f} MB  canary {canary_ms}"
    )


async def run(base: str, pid: int, megabytes: int, pairs: int) -> None:
    for path in ("/v1/audio/speech", "/v1/speak/stream", "/v1/audio/transcriptions"):
        await measure(base, pid, f"chunked {megabytes} MB {path}", lambda p=path: chunked(base, p, megabytes))
    await measure(base, pid, f"ws-flood {pairs} pairs", lambda: ws_flood(base, pairs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=150_000)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        anyio.run(run, f"http://127.0.0.1:{port}", server.pid, args.megabytes, args.pairs)
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
