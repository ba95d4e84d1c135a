"""The protocols' own overhead: time to first audio of the same text over `/v1/speak/stream`
(SSE), gRPC `SynthesizeOnline` (NVIDIA's client) and Wyoming streaming synthesis
(`synthesize-start/-chunk/-stop`, the `wyoming` client) against one server, at 1 and 4 clients at
once; with `--peer-python`, wyoming-piper on the same voice in the same rounds (`make
bench-peers`). Then the same recording transcribed over HTTP (`/v1/audio/transcriptions`), gRPC
`Recognize` and Wyoming `transcribe`, and, with `--peer-python`, wyoming-faster-whisper on the same
model folder. Rounds interleaved; medians; each server's start -> ready and peak RSS.

    python benchmarks/protocols.py [--rounds 5] [--peer-python .venv-peers/bin/python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
import riva.client
from load import start, status
from peers import start_peer, start_whisper_peer, wyoming_first_audio
from tool_calls import free_port
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

TEXT = "Your table for four is booked for seven thirty tonight. We will send a reminder an hour before."
VOICE = "en_US-joe-medium"
CLIENTS = (1, 4)
Measure = Callable[[], Awaitable[float]]


async def sse(base: str) -> float:
    start = time.perf_counter()
    async with httpx2.AsyncClient(timeout=120) as http:
        body = {"text": TEXT, "voice": VOICE}
        async with http.stream("POST", f"{base}/v1/speak/stream", json=body) as response:
            first = None
            async for line in response.aiter_lines():
                if first is None and line.startswith("event: audio"):
                    first = time.perf_counter() - start
    assert first is not None
    return first


def grpc_online(address: str) -> float:
    start, first = time.perf_counter(), None
    service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
    for _ in service.synthesize_online(TEXT, voice_name=VOICE, sample_rate_hz=22050):
        first = first or time.perf_counter() - start
    assert first is not None
    return first


async def wyoming_streamed(port: int) -> float:
    start, first = time.perf_counter(), None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=VOICE)).event())
        await client.write_event(SynthesizeChunk(text=TEXT).event())
        await client.write_event(SynthesizeStop().event())
        while True:
            event = await client.read_event()
            assert event is not None
            if first is None and AudioChunk.is_type(event.type):
                first = time.perf_counter() - start
            if SynthesizeStopped.is_type(event.type):
                break
    assert first is not None
    return first


async def at_once(measure: Measure, clients: int) -> list[float]:
    found: list[float] = []

    async def one() -> None:
        found.append(await measure())

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
    return found


async def wyoming_transcribe(port: int, pcm: bytes) -> None:
    """`pcm` (22.05 kHz) transcribed over Wyoming, as Home Assistant sends it."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=22050, width=2, channels=1).event())
        for at in range(0, len(pcm), 4096):
            chunk = AudioChunk(rate=22050, width=2, channels=1, audio=pcm[at : at + 4096])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None and not Transcript.is_type(event.type):
            pass


async def transcriptions(
    base: str, address: str, port: int, whisper_peer: int, wav: bytes, pcm: bytes
) -> dict[str, float]:
    times: dict[str, float] = {}
    start = time.perf_counter()
    async with httpx2.AsyncClient(timeout=120) as http:
        files = {"file": ("a.wav", wav, "audio/wav")}
        (
            await http.post(f"{base}/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
        ).raise_for_status()
    times["HTTP /v1/audio/transcriptions"] = time.perf_counter() - start

    def recognize() -> None:
        config = riva.client.RecognitionConfig(language_code="en-US")
        riva.client.ASRService(riva.client.Auth(uri=address)).offline_recognize(wav, config)

    start = time.perf_counter()
    await anyio.to_thread.run_sync(recognize)
    times["gRPC Recognize"] = time.perf_counter() - start
    start = time.perf_counter()
    await wyoming_transcribe(port, pcm)
    times["Wyoming transcribe"] = time.perf_counter() - start
    if whisper_peer:
        start = time.perf_counter()
        await wyoming_transcribe(whisper_peer, pcm)
        times["wyoming-faster-whisper (peer)"] = time.perf_counter() - start
    return times


async def run(
    base: str, address: str, port: int, peer: int, whisper_peer: int, rounds: int
) -> dict[str, Any]:
    measures: dict[str, Measure] = {
        "HTTP /v1/speak/stream (SSE)": lambda: sse(base),
        "gRPC SynthesizeOnline": lambda: anyio.to_thread.run_sync(grpc_online, address),
        "Wyoming streaming synthesis": lambda: wyoming_streamed(port),
    }
    if peer:
        measures["wyoming-piper (peer)"] = lambda: wyoming_first_audio(peer, TEXT)
    for measure in measures.values():
        await measure()  # warm
    firsts: dict[tuple[str, int], list[float]] = {}
    names = list(measures)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            for clients in CLIENTS:
                firsts.setdefault((name, clients), []).extend(await at_once(measures[name], clients))
    async with httpx2.AsyncClient(timeout=120) as http:
        body = {"input": TEXT, "voice": VOICE, "response_format": "wav"}
        wav = (await http.post(f"{base}/v1/audio/speech", json=body)).content
        pcm = (
            await http.post(
                f"{base}/v1/audio/speech", json={**body, "response_format": "pcm", "sample_rate": 22050}
            )
        ).content
    heard: dict[str, list[float]] = {}
    await transcriptions(base, address, port, whisper_peer, wav, pcm)  # warm (a peer loads its model now)
    for _ in range(rounds):
        found = await transcriptions(base, address, port, whisper_peer, wav, pcm)
        for name, seconds in found.items():
            heard.setdefault(name, []).append(seconds)
    return {"first": firsts, "heard": heard, "names": names}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peer-python", help="python of a virtualenv with wyoming-piper (make bench-peers)")
    args = parser.parse_args()
    grpc_port, wyoming_port = free_port(), free_port()
    env = {
        **os.environ,
        "SPEECH_TOOLS_SERVER__GRPC_PORT": str(grpc_port),
        "SPEECH_TOOLS_SERVER__WYOMING_PORT": str(wyoming_port),
    }
    proc, base, ready = start(env)
    peer_proc, peer_port, peer_ready = None, 0, 0.0
    whisper_proc, whisper_port = None, 0
    if args.peer_python:
        peer_port, began = free_port(), time.perf_counter()
        peer_proc = start_peer(args.peer_python, peer_port)
        peer_ready = time.perf_counter() - began
        whisper_port = free_port()
        whisper_proc = start_whisper_peer(args.peer_python, whisper_port, tempfile.mkdtemp())
    try:
        address = f"127.0.0.1:{grpc_port}"
        got = anyio.run(run, base, address, wyoming_port, peer_port, whisper_port, args.rounds)
        print(f"time to first audio, '{TEXT[:40]}...' ({VOICE}), {args.rounds} rounds, median (p95):")
        for name in got["names"]:
            cells = []
            for clients in CLIENTS:
                values = sorted(got["first"][(name, clients)])
                p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
                plural = "s" if clients > 1 else ""
                cells.append(f"{clients} client{plural}: {statistics.median(values):.3f} s ({p95:.3f})")
            print(f"  {name:<30} " + "   ".join(cells))
        print("transcription of the same recording, median:")
        for name, values in got["heard"].items():
            print(f"  {name:<30} {statistics.median(values):.3f} s")
        print(f"server: start -> ready {ready:.2f} s; peak RSS {status(proc.pid, 'VmHWM') / 2**20:.0f} MB")
        if peer_proc is not None:
            peak = status(peer_proc.pid, "VmHWM") / 2**20
            print(f"wyoming-piper: start -> listening {peer_ready:.2f} s; peak RSS {peak:.0f} MB")
        if whisper_proc is not None:
            print(f"wyoming-faster-whisper: peak RSS {status(whisper_proc.pid, 'VmHWM') / 2**20:.0f} MB")
    finally:
        for process in (proc, peer_proc, whisper_proc):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
