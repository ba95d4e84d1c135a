"""Encoding speech as it is made: each piece of audio in, the bytes that are ready out.

For a response that starts before synthesis ends. Containers that need a seek to finish (MP4) are
replaced by their streamable cousins: AAC goes out as ADTS. WAV gets a header whose sizes say
"unknown length", as streaming WAV writers do. Raw PCM is the samples alone.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import av
import numpy as np

from speech_backend.audio.encode import CODECS, AudioFormat, output_rate, to_pcm16
from speech_backend.audio.resample import resample
from speech_backend.errors import InvalidArgument
from speech_backend.results import Audio

STREAM_MIME_TYPES: dict[AudioFormat, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "pcm": "audio/L16",
}
_STREAM_MUXERS = {"aac": "adts"}  # MP4 needs a seek to finish; ADTS does not
_UNKNOWN_SIZE = 0xFFFFFFFF


class _Sink:
    """A write-only file for the muxer: collects what it writes until taken."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class StreamEncoder:
    """One stream of mono audio encoded as `fmt` at one rate; `push` pieces, then `close`."""

    def __init__(
        self,
        fmt: AudioFormat,
        source_rate: int,
        sample_rate: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if fmt not in STREAM_MIME_TYPES:
            raise InvalidArgument(
                f"unknown audio format {fmt!r}; choose one of {', '.join(STREAM_MIME_TYPES)}"
            )
        self.fmt = fmt
        self.rate = output_rate(fmt, source_rate, sample_rate)
        self.mime_type = STREAM_MIME_TYPES[fmt]
        self._header = b""
        self._container: av.container.OutputContainer | None = None
        self._sink = _Sink()
        if fmt == "wav":
            self._header = _wav_header(self.rate)
        elif fmt != "pcm":
            muxer, codec, _ = CODECS[fmt]
            options = {"page_duration": "20000"} if muxer == "ogg" else {}  # a page per 20 ms: no lag
            container = av.open(self._sink, mode="w", format=_STREAM_MUXERS.get(fmt, muxer), options=options)
            container.metadata.update(dict(metadata or {}))
            stream = container.add_stream(codec, rate=self.rate, layout="mono")
            assert isinstance(stream, av.audio.stream.AudioStream)
            if fmt in ("mp3", "aac"):
                stream.bit_rate = 64000 if self.rate <= 24000 else 128000
            self._container, self._stream = container, stream

    def push(self, audio: Audio) -> bytes:
        """Encode a piece of audio; returns the bytes ready now (possibly none)."""
        pcm = to_pcm16(resample(audio, self.rate).samples)
        if self._container is None:
            out, self._header = self._header + pcm.tobytes(), b""
            return out
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.reshape(1, -1)), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def close(self) -> bytes:
        """Flush the encoder and finish the container; returns the last bytes."""
        if self._container is None:
            out, self._header = self._header, b""
            return out
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()


def _wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes at their maximum)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    riff = [b"RIFF", struct.pack("<I", _UNKNOWN_SIZE), b"WAVE", b"fmt ", struct.pack("<I", len(fmt)), fmt]
    return b"".join([*riff, b"data", struct.pack("<I", _UNKNOWN_SIZE)])
