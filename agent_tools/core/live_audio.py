"""A live stream's audio on its way to the segmenter: resampled to 16 kHz, then cleaned of noise
when the stream's `noise_reduction` asks for it (before voice activity detection and recognition)."""

from __future__ import annotations

import numpy as np

from agent_tools.core.engines import Engines
from agent_tools.core.live_settings import LiveSettings
from speech_backend.audio.resample import StreamResampler
from speech_backend.results import Samples
from speech_backend.voice_activity.denoise import StreamDenoiser
from speech_backend.voice_activity.vad import VAD_RATE


class LiveAudio:
    """Resampling, and the stream's own denoiser (its state carries from frame to frame)."""

    def __init__(self, engines: Engines, params: LiveSettings) -> None:
        self.sample_rate = params.sample_rate
        self.noise_reduction = params.noise_reduction
        self._resampler = StreamResampler(params.sample_rate, VAD_RATE)
        self._denoiser: StreamDenoiser | None = None
        if params.noise_reduction is not None:
            self._denoiser = engines.require_denoiser().stream(params.noise_reduction)

    def push(self, samples: Samples) -> Samples:
        """16 kHz audio of `samples` (at the stream's rate), as far as it is ready."""
        out = self._resampler.push(samples)
        return out if self._denoiser is None else self._denoiser.push(out)

    def flush(self) -> Samples:
        """What is still held (the stream ended, or its rate or noise reduction changes)."""
        out = self._resampler.push(np.zeros(0, dtype=np.float32), last=True)
        return out if self._denoiser is None else self._denoiser.push(out, last=True)

    def same_for(self, params: LiveSettings) -> bool:
        """Whether `params` keep this conditioning (same rate, same noise reduction)."""
        return params.sample_rate == self.sample_rate and params.noise_reduction == self.noise_reduction
