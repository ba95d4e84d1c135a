"""Smart Turn v3.2 (BSD-2-Clause, Daily): whether a speaker has finished their turn, from the sound
of its last 8 seconds (words and prosody), as a probability; about 30-50 ms on one CPU thread.

The model file ships inside the `pipecat-ai==1.14.0` wheel; set-up takes that one file out of it
(`python -m speech_backend.voice_activity.turn_model --cache DIR`, which `make` runs) and it is
checked against its pinned sha256 when loaded. pipecat is not a run-time dependency. Its input is
Whisper's 80-bin log-mel features of the waveform normalised to zero mean and unit variance, which
faster-whisper's feature extractor computes (checked equal to pipecat's to 4e-7).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.results import Samples
from speech_backend.voice_activity.vad import VAD_RATE
from speech_backend.wheel_files import WheelFile, main

SMART_TURN = WheelFile(
    "pipecat-ai==1.14.0",
    "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
    "smart-turn-v3.2-cpu.onnx",
    "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
)
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
    return SMART_TURN.path(cache_dir)


def _load(path: Path) -> tuple[Any, Any]:
    import onnxruntime
    from faster_whisper.feature_extractor import FeatureExtractor

    SMART_TURN.check(path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, FeatureExtractor(feature_size=80)


if __name__ == "__main__":
    sys.exit(main({"Smart Turn v3.2": SMART_TURN}))
