"""Tool-call benchmark: MCP over streamable HTTP against the direct engine call, and throughput.

Starts `speech-tools serve` in a subprocess on a loopback port (as deployed), then measures in one run:
- latency of `speak` (one sentence) and `transcribe` (5 s of speech) through MCP over HTTP, beside
  the same work done by calling the engine adapters directly in this process (overhead ratio);
- throughput with 1, 2, 4 and 8 concurrent MCP clients (audio seconds per wall second).

    python benchmarks/tool_calls.py [--repeats N] [--calls-per-client N]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx2
import numpy as np
from mcp import Client
from revisions import side_by_side
from timing import NEWS, median_time

from agent_tools.settings import Settings
from speech_backend import (
    Audio,
    RecognitionOptions,
    SynthesisOptions,
    build_recognizer,
    build_synthesizer,
    encode_audio,
    resample,
    resolve_device,
)

SENTENCE = "Your table for four is booked for seven thirty tonight."
CLIP_TEXT = "Please remind me to call the dentist tomorrow morning at nine, and to buy milk on the way home."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`speech-tools serve` on `port` (with `env` added to its environment), once ready."""
    cmd = [str(Path(sys.executable).with_name("speech-tools")), "serve", "--port", str(port)]
    environment = {**os.environ, **side_by_side(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not become ready")


def run_with_server(run: Callable[[str, int], Awaitable[None]], rounds: int) -> None:
    """Start the server in a subprocess, run `run(base_url, rounds)` against it, stop it."""
    port = free_port()
    server = start_server(port)
    try:
        anyio.run(run, f"http://127.0.0.1:{port}", rounds)
    finally:
        server.terminate()
        server.wait(timeout=60)


def direct(clip: Audio, repeats: int) -> dict[str, float]:
    settings = Settings()
    device = resolve_device("cpu")
    synthesizer = build_synthesizer(settings.engines, device)
    recognizer = build_recognizer(settings.engines, device)
    voice = settings.engines.piper.default_voice
    options = SynthesisOptions()
    list(synthesizer.synthesize(SENTENCE, voice, options))
    return {
        "speak_s": median_time(lambda: list(synthesizer.synthesize(SENTENCE, voice, options)), repeats),
        "transcribe_s": median_time(lambda: recognizer.transcribe(clip, RecognitionOptions()), repeats),
    }


async def through_mcp(url: str, clip_b64: str, repeats: int) -> dict[str, float]:
    async with Client(url) as client:
        await client.call_tool("speak", {"text": SENTENCE})
        speak, transcribe = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            await client.call_tool("speak", {"text": SENTENCE})
            speak.append(time.perf_counter() - start)
            start = time.perf_counter()
            await client.call_tool("transcribe", {"audio_base64": clip_b64})
            transcribe.append(time.perf_counter() - start)
    return {"speak_s": statistics.median(speak), "transcribe_s": statistics.median(transcribe)}


async def throughput(
    url: str, tool: str, args: dict[str, str], clients: int, calls: int
) -> tuple[float, int]:
    """Wall seconds for `clients` clients making `calls` calls each, and how many were refused busy."""
    busy = 0

    async def one_client() -> None:
        nonlocal busy
        async with Client(url) as client:
            for _ in range(calls):
                result = await client.call_tool(tool, args)
                if result.is_error:
                    busy += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one_client)
    return time.perf_counter() - start, busy


async def run(
    url: str,
    clip_b64: str,
    clip_s: float,
    long_b64: str,
    long_s: float,
    speech_s: float,
    args: argparse.Namespace,
) -> None:
    mcp = await through_mcp(url, clip_b64, args.repeats)
    print(f"repeats={args.repeats} (medians), cores={os.cpu_count()}")
    print("latency              direct engine   MCP over HTTP   ratio")
    for key, label in (("speak_s", "speak (1 sentence)"), ("transcribe_s", f"transcribe ({clip_s:.1f} s)")):
        print(f"{label:<20} {DIRECT[key]:>10.3f} s   {mcp[key]:>10.3f} s   {mcp[key] / DIRECT[key]:.2f}")
    print("\nthroughput (audio seconds per wall second; calls per client:", args.calls_per_client, ")")
    print(f"clients   transcribe {clip_s:.0f} s clips   transcribe {long_s:.0f} s clips   speak   busy")
    calls = args.calls_per_client
    for clients in (1, 2, 4, 8):
        wall_t, busy_t = await throughput(url, "transcribe", {"audio_base64": clip_b64}, clients, calls)
        wall_l, busy_l = await throughput(
            url, "transcribe", {"audio_base64": long_b64}, clients, max(1, calls // 2)
        )
        wall_s, busy_s = await throughput(url, "speak", {"text": SENTENCE}, clients, calls)
        n = clients * calls
        n_long = clients * max(1, calls // 2)
        print(
            f"{clients:>7}   {n * clip_s / wall_t:>20.1f}   {n_long * long_s / wall_l:>21.1f}   "
            f"{n * speech_s / wall_s:>5.1f}   {busy_t + busy_l + busy_s}"
        )


DIRECT: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls-per-client", type=int, default=4)
    args = parser.parse_args()
    settings = Settings()
    device = resolve_device("cpu")
    synthesizer = build_synthesizer(settings.engines, device)
    voice = settings.engines.piper.default_voice
    chunks = list(synthesizer.synthesize(CLIP_TEXT, voice, SynthesisOptions(deterministic=True)))
    clip = resample(
        Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate), 16000
    )
    sentence = list(synthesizer.synthesize(SENTENCE, voice, SynthesisOptions(deterministic=True)))
    speech_s = sum(c.audio.duration for c in sentence)
    clip_b64 = base64.b64encode(encode_audio(clip, "flac")).decode()
    news = list(synthesizer.synthesize(NEWS, voice, SynthesisOptions(deterministic=True)))
    long_clip = resample(
        Audio(np.concatenate([c.audio.samples for c in news]), news[0].audio.sample_rate), 16000
    )
    long_b64 = base64.b64encode(encode_audio(long_clip, "flac")).decode()
    port = free_port()
    server = start_server(port)
    try:
        DIRECT.update(direct(clip, args.repeats))
        url = f"http://127.0.0.1:{port}/mcp"
        anyio.run(run, url, clip_b64, clip.duration, long_b64, long_clip.duration, speech_s, args)
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
