"""The engine pool against in-process engines, in one run: the embedded server (`make run`) and a
local cluster (`make cluster`: Redis, Ray head, the pool, one front-end) are both up, and each round
asks both the same thing in turn.

- overhead: time to first audio of `/v1/speak/stream` (the 410-character text) and the latency of
  transcribing 5 s of speech (`/v1/audio/transcriptions`), medians, cluster / embedded;
- throughput at 4 concurrent clients, with 1 and then 2 replicas per role: speech (audio seconds
  per wall second over `/v1/audio/speech`) and recognition (transcriptions of the 5 s clip per
  second);
- priority across front-ends: time to first audio when 8 streams start at once, split over two
  front-ends, on one synthesis replica that hands its slots out by priority (2 slots) and on one
  that makes every sentence at once as it comes (64 slots: no queue, as before priorities reached
  the replicas); median and p95 over the rounds.

    python benchmarks/cluster.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import numpy as np
import yaml
from streaming import first_audio_streamed
from timing import NEWS
from tool_calls import CLIP_TEXT, free_port, start_server

from agent_tools.settings import Settings
from speech_backend import Audio, SynthesisOptions, build_synthesizer, encode_audio, resolve_device
from speech_cluster.local import SERVE_CONFIG, LocalCluster

SENTENCE = "Your table for four is booked for seven thirty tonight."
MEDIUM = (
    "Your order has shipped and should arrive on Thursday. The courier will call before delivery. "
    "If nobody is home, the parcel goes to the pickup point on Main Street. You can change the "
    "address until Wednesday evening."
)


def clip_of_five_seconds() -> bytes:
    settings = Settings()
    synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"))
    chunks = list(synthesizer.synthesize(CLIP_TEXT, settings.engines.piper.default_voice, SynthesisOptions()))
    audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
    rate = audio.sample_rate
    samples = np.resize(audio.samples, 5 * rate) if audio.duration < 5 else audio.samples[: 5 * rate]
    return encode_audio(Audio(samples, rate), "wav")


async def transcribe(http: httpx2.AsyncClient, base: str, wav: bytes) -> float:
    start = time.perf_counter()
    files = {"file": ("clip.wav", wav, "audio/wav")}
    response = await http.post(f"{base}/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
    response.raise_for_status()
    return time.perf_counter() - start


async def overhead(embedded: str, cluster: str, wav: bytes, rounds: int) -> None:
    timings: dict[tuple[str, str], list[float]] = {}
    async with httpx2.AsyncClient(timeout=300) as http:
        for base in (embedded, cluster):  # warm both
            await first_audio_streamed(http, base)
            await transcribe(http, base, wav)
        for _ in range(rounds):
            for name, base in (("embedded", embedded), ("cluster", cluster)):
                timings.setdefault(("ttfa", name), []).append(await first_audio_streamed(http, base))
                timings.setdefault(("asr", name), []).append(await transcribe(http, base, wav))
    print(f"overhead, medians of {rounds} interleaved rounds (text of {len(NEWS)} characters; 5 s clip):")
    for metric, label in (("ttfa", "time to first audio"), ("asr", "5 s transcription")):
        local = statistics.median(timings[(metric, "embedded")])
        remote = statistics.median(timings[(metric, "cluster")])
        print(f"  {label}: embedded {local:.3f} s, cluster {remote:.3f} s, ratio {remote / local:.2f}")


async def throughput(base: str, wav: bytes, seconds: float, clients: int = 4) -> tuple[float, float]:
    """Speech audio seconds per second, then transcriptions per second, with `clients` at once."""
    async with httpx2.AsyncClient(timeout=300) as http:
        audio = 0.0

        async def speaker() -> None:
            nonlocal audio
            body = {"model": "tts-1", "voice": "alloy", "input": SENTENCE, "response_format": "pcm"}
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                response = await http.post(f"{base}/v1/audio/speech", json=body)
                audio += len(response.content) / 2 / 24000

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(speaker)
        speech = audio / (time.perf_counter() - start)

        done = 0

        async def listener() -> None:
            nonlocal done
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                await transcribe(http, base, wav)
                done += 1

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(listener)
        return speech, done / (time.perf_counter() - start)


async def first_audio_together(fronts: list[str], clients: int) -> list[float]:
    """Time to first audio of `clients` streams started at once, spread over the front-ends."""
    ttfa: list[float] = []
    async with httpx2.AsyncClient(timeout=300) as http:

        async def one(base: str) -> None:
            ttfa.append(await first_audio_streamed(http, base, MEDIUM))

        async with anyio.create_task_group() as tg:
            for n in range(clients):
                tg.start_soon(one, fronts[n % len(fronts)])
    return ttfa


def priority_rows(cluster: LocalCluster, fronts: list[str], rounds: int, clients: int = 8) -> None:
    print(f"time to first audio, {clients} streams at once over {len(fronts)} front-ends, 1 replica:")
    for label, slots in (("by priority (2 slots)", 2), ("all at once (64 slots)", 64)):
        redeploy(cluster, 1, synthesis_args={"slots": slots})
        anyio.run(first_audio_together, fronts, 2)  # warm
        times = [t for _ in range(rounds) for t in anyio.run(first_audio_together, fronts, clients)]
        p95 = float(np.percentile(times, 95))
        print(f"  {label}: median {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


def redeploy(cluster: LocalCluster, replicas: int, synthesis_args: dict[str, int] | None = None) -> None:
    """The pool with a fixed number of replicas per role (and extra synthesis application args)."""
    state = cluster.state()
    assert state is not None
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    for app in config["applications"]:
        if synthesis_args and app["name"] == "speech-synthesis":
            app["args"].update(synthesis_args)
        for deployment in app["deployments"]:
            deployment.pop("autoscaling_config", None)
            deployment["num_replicas"] = replicas
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(config, f)
    serve = str(cluster.bin / "serve")
    env = cluster.ray_env()
    subprocess.run([serve, "deploy", f.name, "-a", state.dashboard], check=True, env=env, capture_output=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = subprocess.run(
            [serve, "status", "-a", state.dashboard], capture_output=True, text=True, env=env, check=False
        ).stdout
        healthy = (
            status.count("status: HEALTHY") == 2 and "UPDATING" not in status and "DEPLOYING" not in status
        )
        if healthy and status.count(f"RUNNING: {replicas}") == 2:
            return
        time.sleep(2)
    raise RuntimeError(f"the pool did not reach {replicas} replicas per role")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each throughput run")
    parser.add_argument("--only-priority", action="store_true", help="only the priority rows")
    args = parser.parse_args()
    wav = clip_of_five_seconds()
    port = free_port()
    embedded = start_server(port)
    cache = Settings().engines.cache_dir
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bench-cluster-")), cache_dir=cache)
    try:
        state = cluster.up([free_port(), free_port()])
        fronts = [f"http://127.0.0.1:{p}" for p in state.front_end_ports]
        front = fronts[0]
        if args.only_priority:
            embedded.terminate()
            embedded.wait(timeout=60)
            priority_rows(cluster, fronts, args.rounds)
            return
        anyio.run(overhead, f"http://127.0.0.1:{port}", front, wav, args.rounds)
        embedded.terminate()
        embedded.wait(timeout=60)
        priority_rows(cluster, fronts, args.rounds)
        print(f"throughput at 4 clients through the cluster ({args.seconds:g} s per run):")
        for replicas in (1, 2):
            redeploy(cluster, replicas)
            speech, asr = anyio.run(throughput, front, wav, args.seconds)
            print(
                f"  {replicas} replica(s) per role: speech {speech:.1f} audio s/s, "
                f"recognition {asr:.2f} transcriptions/s of 5 s"
            )
    finally:
        if embedded.poll() is None:
            embedded.terminate()
            embedded.wait(timeout=60)
        cluster.down()


if __name__ == "__main__":
    main()
