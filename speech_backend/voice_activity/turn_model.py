"""Smart Turn v3.2 (BSD-2-Clause, Daily): whether a speaker has finished their turn, from the sound
of its last 8 seconds (words and prosody), as a probability; about 30-50 ms on one CPU thread.

The model file ships inside the `pipecat-ai==1.14.0` wheel; set-up takes that one file out of it
(`python -m speech_backend.voice_activity.turn_model --cache DIR`, which `make` runs) and it is
checked against its pinned sha256 when loaded. pipecat is not a run-time dependency. Its input is
Whisper's 80-bin log-mel features of the waveform normalised to zero mean and unit variance, which
faster-whisper's feature extractor computes (checked equal to pipecat's to 4e-7).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.errors import ModelNotFound
from speech_backend.results import Samples
from speech_backend.voice_activity.vad import VAD_RATE

WHEEL = "pipecat-ai==1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_NAME = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
WINDOW_SAMPLES = 8 * VAD_RATE  # the model hears the last 8 s, padded with silence before


class TurnModel:
    """Smart Turn on onnxruntime (one thread: it runs beside the VAD and the recognizer)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._session: Any = None
        self._features: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Check and load the model now rather than on the first judgement.

        Raises:
            ModelNotFound: the file is missing or not the pinned one.
        """
        with self._lock:
            if self._session is None:
                self._session, self._features = _load(self._path)

    def completion(self, samples: Samples) -> float:
        """The probability (0-1) that the speech ending `samples` (16 kHz) is a finished turn."""
        self.load()
        audio = np.asarray(samples[-WINDOW_SAMPLES:], dtype=np.float32)
        audio = np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        features = self._features(audio, padding=0)[None, :, : WINDOW_SAMPLES // 160].astype(np.float32)
        with self._lock:  # one run at a time: a session's thread pool is its own
            (logits,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(logits).reshape(-1)[0])


def model_file(cache_dir: Path) -> Path | None:
    """Where set-up put the model, or None when it did not."""
    path = cache_dir / MODEL_NAME
    return path if path.is_file() else None


def _load(path: Path) -> tuple[Any, Any]:
    import onnxruntime
    from faster_whisper.feature_extractor import FeatureExtractor

    if _sha256(path.read_bytes()) != MODEL_SHA256:
        raise ModelNotFound(f"{path} is not Smart Turn v3.2 (sha256 differs); delete it and run `make` again")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, FeatureExtractor(feature_size=80)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(cache_dir: Path) -> Path:
    """Take the model out of the pipecat-ai wheel (from PyPI, through pip) into `cache_dir`.

    Raises:
        ModelNotFound: pip failed, or the file is not the pinned one.
    """
    target = cache_dir / MODEL_NAME
    if target.is_file() and _sha256(target.read_bytes()) == MODEL_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp]
        try:
            subprocess.run(download, check=True, capture_output=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ModelNotFound(f"`pip download {WHEEL}` failed ({exc}); pip fetches Smart Turn") from exc
        wheel = next(Path(tmp).glob("pipecat_ai-*.whl"), None)
        if wheel is None:
            raise ModelNotFound(f"pip left no {WHEEL} wheel")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    if _sha256(data) != MODEL_SHA256:
        raise ModelNotFound(f"{WHEEL}'s {MEMBER} does not have the pinned sha256")
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{MODEL_NAME}.{os.getpid()}"
    staging.write_bytes(data)
    os.replace(staging, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Set-up: put Smart Turn in the cache folder; exit 1 with the reason when it cannot be had."""
    parser = argparse.ArgumentParser(description="Take Smart Turn v3.2 out of the pipecat-ai wheel, checked.")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        path = fetch(args.cache)
    except ModelNotFound as exc:
        print(f"error [model_not_found]: {exc.message}", file=sys.stderr)
        return 1
    print(f"{path}: Smart Turn v3.2", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
