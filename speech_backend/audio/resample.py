"""Sample-rate conversion with soxr, whole or as a stream of chunks."""

from __future__ import annotations

import numpy as np
import soxr

from speech_backend.results import Audio, Samples

QUALITY = "HQ"


def resample(audio: Audio, rate: int) -> Audio:
    """Return `audio` at `rate` Hz (the same object when it already is)."""
    if audio.sample_rate == rate:
        return audio
    out = soxr.resample(audio.samples, audio.sample_rate, rate, quality=QUALITY)
    return Audio(np.ascontiguousarray(out, dtype=np.float32), rate)


class StreamResampler:
    """Resamples mono chunks as they arrive, so long inputs never exist at their source rate in full."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._passthrough = in_rate == out_rate
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=QUALITY)
        )

    def push(self, chunk: Samples, last: bool = False) -> Samples:
        """Feed one chunk; returns what is ready (all of it when `last`)."""
        if self._stream is None:
            return chunk
        out = self._stream.resample_chunk(np.ascontiguousarray(chunk, dtype=np.float32), last=last)
        return np.asarray(out, dtype=np.float32)
