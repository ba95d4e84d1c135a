"""Audio fixtures made in code: containers and codecs through PyAV, and hand-built WAV headers."""

from __future__ import annotations

import io
import struct
from typing import Any, cast

import av
import numpy as np

from speech_backend import Audio


def container_bytes(
    audio: Audio, muxer: str, codec: str, *, channels: int = 1, streams: int = 1, rate: int | None = None
) -> bytes:
    """Encode `audio` (repeated across channels and streams) with any PyAV muxer and codec."""
    rate = rate or audio.sample_rate
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    pcm = (np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as out:
        options = {"strict": "experimental"} if codec == "vorbis" else {}
        outs = [
            cast(av.AudioStream, out.add_stream(codec, rate=rate, layout=layout, options=options))
            for _ in range(streams)
        ]
        interleaved = np.repeat(pcm, channels)
        step = 1024 * channels
        for start in range(0, len(interleaved), step):
            for stream in outs:
                frame = av.AudioFrame.from_ndarray(
                    interleaved[start : start + step].reshape(1, -1), format="s16", layout=layout
                )
                frame.sample_rate = rate
                frame.pts = start // channels
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in outs:
            for packet in stream.encode(None):
                out.mux(packet)
    return buffer.getvalue()


def wav_header(*, rate: int, channels: int, bits: int = 16, data_size: int, fmt_tag: int = 1) -> bytes:
    """A canonical 44-byte RIFF/WAVE header with whatever values a test wants to lie with."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    riff_size = min(0xFFFFFFFF, 4 + 8 + len(fmt) + 8 + data_size)
    chunks = [b"RIFF", struct.pack("<I", riff_size), b"WAVE", b"fmt ", struct.pack("<I", len(fmt)), fmt]
    return b"".join([*chunks, b"data", struct.pack("<I", data_size)])


def wav_bytes(samples: np.ndarray[Any, Any], rate: int, channels: int = 1) -> bytes:
    """A valid 16-bit PCM WAV of interleaved `samples`."""
    pcm: bytes = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return wav_header(rate=rate, channels=channels, data_size=len(pcm)) + pcm
