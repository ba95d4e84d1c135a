"""Live transcription latency over `/v1/transcribe/ws`: audio streamed in real time (100 ms frames),
measured from the end of each utterance's speech to `speech_stopped` and to its `final`, with 1 and
2 concurrent streams, then 2 streams while a 30-minute whole-file transcription runs beside them;
each row for the server before this scheduler (`--before`, a worktree of that revision) and as it is,
one after the other. Servers in subprocesses on loopback.

    python benchmarks/live.py [--rounds N] [--before REV] [--also LABEL:KEY=VALUE,...]

`--also` adds a server of the current code with those settings (say `2x2:SPEECH_TOOLS_ENGINES__
WHISPER__CPU_THREADS=2`), measured in the same rounds. `--query` adds clients of the current server
that send these parameters (say `no-words:word_timestamps=false`: finals without word timings, which
Moonshine serves). Each server's start -> ready and peak RSS close the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import anyio
import httpx2
import numpy as np
from load import status
from revisions import BEFORE_SCHEDULER, labelled_settings, revision_env, short
from tool_calls import free_port, start_server
from websockets.asyncio.client import connect

from speech_backend import Audio, AudioLimits, decode_audio, encode_audio

UTTERANCES = [
    "Can you play something relaxing for the evening?",
    "Set a timer for twenty five minutes.",
    "What is the weather going to be like in Lisbon tomorrow?",
    "Add milk, eggs and bread to my shopping list.",
    "Call the dentist and move my appointment to Friday morning.",
]
RATE = 16000
FRAME = 1600  # 100 ms
GAP = 1.5


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def conversation(base: str) -> tuple[bytes, list[float]]:
    """The utterances spoken by the server, with pauses, as PCM16; and where each one's speech ends."""
    parts, ends, at = [np.zeros(int(RATE * GAP), np.float32)], [], GAP
    async with httpx2.AsyncClient(timeout=120) as http:
        for text in UTTERANCES:
            body = {"input": text, "response_format": "wav"}
            response = await http.post(f"{base}/v1/audio/speech", json=body)
            samples = decode_audio(response.content, AudioLimits(), RATE).audio.samples
            voiced = np.flatnonzero(np.abs(samples) > 0.02)
            ends.append(at + (voiced[-1] + 1) / RATE)
            parts += [samples, np.zeros(int(RATE * GAP), np.float32)]
            at += len(samples) / RATE + GAP
    audio = np.concatenate(parts)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(), ends


async def stream(url: str, pcm: bytes, ends: list[float], into: dict[str, list[float]]) -> None:
    async with connect(url) as ws:
        await ws.recv()
        start = time.perf_counter()

        async def send() -> None:
            for i, offset in enumerate(range(0, len(pcm), FRAME * 2)):
                await anyio.sleep(max(0.0, start + i * FRAME / RATE - time.perf_counter()))
                await ws.send(pcm[offset : offset + FRAME * 2])
            await ws.send(json.dumps({"type": "end"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            while True:
                event = json.loads(await ws.recv())
                now = time.perf_counter() - start
                if event["type"] in ("speech_stopped", "final"):
                    spoken_end = ends[event["utterance"] - 1]
                    into[event["type"]].append(now - spoken_end)
                if event["type"] == "final":
                    into["server_ms"].append(event["latency_ms"] / 1000)
                    if "cost" in event:  # (not reported before the priority scheduler)
                        into["queue_ms"].append(event["cost"]["queue_ms"] / 1000)
                        into["engine_ms"].append(event["cost"]["engine_ms"] / 1000)
                    into["words"].append(float(len(event["text"].split())))
                if event["type"] == "done":
                    break


ROWS = {"1": (1, False), "2": (2, False), "2+batch": (2, True)}


async def run(servers: dict[str, str], rounds: int, rows: list[str]) -> None:
    """`servers`: each column's label -> its WebSocket URL (a server, and the parameters sent)."""
    pcm, ends = await conversation(next(iter(servers.values())).replace("ws://", "http://").split("/v1/")[0])
    keys = ("speech_stopped", "final", "server_ms", "queue_ms", "engine_ms", "words")
    for url in servers.values():
        await stream(url, pcm[: int(RATE * 6) * 2], ends, {k: [] for k in keys})  # warm
    print(
        f"{len(UTTERANCES)} utterances per stream, {GAP:g} s pauses, "
        f"100 ms frames in real time, rounds={rounds}"
    )
    width = max(len(name) for name in servers) + 2
    print(
        f"{'streams':<17}{'server':<{width}}end->stopped p50/p95   end->final p50/p95   "
        "stopped->final (server) p50 [queue, engine]"
    )
    for streams, batch in (ROWS[row] for row in rows):
        # Beside a batch, the server before goes last: it keeps transcribing an abandoned upload to
        # its deadline (it did not stop on hang-up), which would load the servers measured after it.
        order = sorted(servers.items(), key=lambda item: batch and item[0].startswith("before"))
        for name, url in order:
            got: dict[str, list[float]] = {k: [] for k in keys}
            async with anyio.create_task_group() as beside:
                if batch:
                    base = url.replace("ws://", "http://").split("/v1/")[0]
                    beside.start_soon(transcribe_half_an_hour, base, pcm)
                    await anyio.sleep(5)  # uploaded and decoding: the recognizer is busy with it
                for _ in range(rounds):
                    async with anyio.create_task_group() as tg:
                        for _ in range(streams):
                            tg.start_soon(stream, url, pcm, ends, got)
                beside.cancel_scope.cancel()
            stopped, final, server = got["speech_stopped"], got["final"], got["server_ms"]
            label = f"{streams} + 30 min batch" if batch else f"{streams}"
            print(
                f"{label:<17}{name:<{width}}{statistics.median(stopped):.3f} / {p95(stopped):.3f} s      "
                f"{statistics.median(final):.3f} / {p95(final):.3f} s     {statistics.median(server):.3f} s"
                f" [{cost(got['queue_ms'])}, {cost(got['engine_ms'])}]"
                f"   ({len(final)} finals)",
                flush=True,
            )


def cost(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "-"


def ws_url(base: str, query: str = "") -> str:
    url = base.replace("http://", "ws://") + "/v1/transcribe/ws?partial_interval_ms=750"
    return f"{url}&{query}" if query else url


async def transcribe_half_an_hour(base: str, pcm: bytes) -> None:
    """A whole-file transcription of 30 minutes of the conversation, as Opus (until cancelled)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    long = np.resize(samples, RATE * 1790)
    data = encode_audio(Audio(long.astype(np.float32), RATE), "opus")
    files = {"file": ("long.ogg", data, "audio/ogg")}
    async with httpx2.AsyncClient(timeout=3600) as http:
        await http.post(f"{base}/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=BEFORE_SCHEDULER, help="revision measured as 'before'")
    parser.add_argument("--also", action="append", default=[], help="LABEL:KEY=VALUE,... (repeatable)")
    parser.add_argument("--query", action="append", default=[], help="LABEL:QUERY (repeatable)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows, of {','.join(ROWS)}")
    args = parser.parse_args()
    with revision_env(args.before) as before:
        envs = {f"before ({short(args.before)})": before, "now": {}}
        envs.update(labelled_settings(extra) for extra in args.also)
        ports = {name: free_port() for name in envs}
        procs, ready = {}, {}
        for name in envs:
            started = time.perf_counter()
            procs[name] = start_server(ports[name], envs[name])
            ready[name] = time.perf_counter() - started
        try:
            urls = {name: ws_url(f"http://127.0.0.1:{port}") for name, port in ports.items()}
            for spec in args.query:
                label, query = spec.split(":", 1)
                urls[f"now, {label}"] = ws_url(f"http://127.0.0.1:{ports['now']}", query)
            anyio.run(run, urls, args.rounds, args.rows.split(","))
            for name, proc in procs.items():
                peak = status(proc.pid, "VmHWM") / 2**20
                print(f"server {name}: start -> ready {ready[name]:.2f} s; peak RSS {peak:.0f} MB")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=60)


if __name__ == "__main__":
    main()
