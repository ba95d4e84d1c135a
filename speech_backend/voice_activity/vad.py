"""Voice activity on a live 16 kHz stream with the Silero VAD model that faster-whisper ships.

faster-whisper runs the model over a whole file at once; a live stream needs its recurrent state
carried from one chunk to the next, so this holds its own onnxruntime session and that state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from faster_whisper.vad import get_assets_path

from speech_backend.errors import ModelNotFound
from speech_backend.protocols import RECOGNITION_RATE
from speech_backend.results import Samples

VAD_RATE = RECOGNITION_RATE
WINDOW = 512  # samples per decision: 32 ms at 16 kHz
CONTEXT = 64  # samples of the previous window the model sees with each one
MODEL_FILE = "silero_vad_v6.onnx"


def vad_model_path() -> Path:
    """The Silero VAD model inside the installed faster-whisper package."""
    return Path(get_assets_path()) / MODEL_FILE


class VadSession:
    """One loaded VAD model; cheap to share, each stream keeps its own `SpeechProbabilities`."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or vad_model_path()
        if not path.is_file():
            raise ModelNotFound(f"the VAD model {path} is missing; reinstall faster-whisper")
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        self.session = ort.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=options
        )


class SpeechProbabilities:
    """Speech probability per 32 ms window of one 16 kHz stream, fed in chunks of any size."""

    def __init__(self, model: VadSession) -> None:
        self._session = model.session
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)

    @property
    def pending(self) -> Samples:
        """Samples fed but not yet judged (less than one window)."""
        return self._pending

    def push(self, samples: Samples) -> tuple[Samples, Samples]:
        """Feed 16 kHz samples; returns the complete windows now judged (n x 512) and their probabilities."""
        pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(pending) // WINDOW
        self._pending = pending[count * WINDOW :]
        if count == 0:
            return np.zeros((0, WINDOW), dtype=np.float32), np.zeros(0, dtype=np.float32)
        windows = pending[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.vstack([self._context[None, :], windows[:-1, -CONTEXT:]])
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return windows, np.asarray(probs, dtype=np.float32).reshape(-1)[:count]
