"""Bounded audio decoding with PyAV: allowlisted demuxers and codecs, samples counted as they decode.

Nothing a header says is trusted for sizing: the decoded sample count is what stops an input that is
too long, and the whole input is never held at its source rate when a target rate is asked for. A
header that declares a length over the cap is believed, though: the input is refused before any of
it is decoded. Decoded samples go into one buffer grown by doubling (no per-frame pieces to join):
large blocks the allocator hands back to the system once the call is over.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av
import numpy as np

from speech_backend.audio.resample import StreamResampler
from speech_backend.config import AudioLimits
from speech_backend.errors import (
    AudioTooLong,
    DecodeFailed,
    InvalidArgument,
    PayloadTooLarge,
    UnsupportedMedia,
)
from speech_backend.results import Audio, Samples

# FFmpeg demuxer names for wav, flac, mp3, ogg (vorbis, opus), webm/matroska (opus), m4a/mp4 (aac)
# and raw AAC in ADTS frames (what streamed `aac` speech is).
ALLOWED_DEMUXERS = ("wav", "flac", "mp3", "ogg", "matroska", "mov", "aac")
ALLOWED_CODECS = frozenset(
    {
        "pcm_s16le",
        "pcm_s24le",
        "pcm_s32le",
        "pcm_f32le",
        "pcm_f64le",
        "pcm_u8",
        "pcm_mulaw",
        "pcm_alaw",
        "flac",
        "mp3",
        "mp3float",
        "vorbis",
        "opus",
        "libopus",
        "aac",
    }
)
MAX_STREAMS = 16
_MAGIC = (
    (0, b"RIFF", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
    (0, b"ID3", "MP3"),
    (0, b"\xff\xfb", "MP3"),
    (0, b"\xff\xf3", "MP3"),
    (0, b"\xff\xf2", "MP3"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (4, b"ftyp", "MP4/M4A"),
)
_PROBE_OPTIONS = {
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "probesize": str(1 << 20),
    "analyzeduration": str(5_000_000),
    "max_streams": str(MAX_STREAMS),
}
# A header may round a length; beyond this shortfall the file is called truncated.
_TRUNCATION_TOLERANCE = 0.98
_SENTINEL_SECONDS = 24 * 3600


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Decoded mono audio plus what the input declared about itself."""

    audio: Audio
    container: str
    codec: str
    source_rate: int
    channels: int
    metadata: dict[str, str] = field(default_factory=dict)


def decode_audio(data: bytes, limits: AudioLimits, target_rate: int | None = None) -> DecodedAudio:
    """Decode the first audio stream of `data` to mono float32, at `target_rate` when given.

    Raises:
        InvalidArgument: `data` is empty.
        PayloadTooLarge: `data` is over `limits.max_bytes`.
        UnsupportedMedia: not audio, or a container or codec outside the allowlist.
        DecodeFailed: corrupt, truncated, without samples, or with absurd parameters.
        AudioTooLong: more than `limits.max_seconds` of decoded audio.
    """
    if not data:
        raise InvalidArgument("the audio is empty (0 bytes); send a wav, flac, mp3, ogg, webm or m4a file")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the audio is {len(data)} bytes, over the limit of {limits.max_bytes}; send a shorter or "
            "more compressed file"
        )
    kind = sniff(data)
    if kind == "WAV":
        check_wav_header(data)
    try:
        container = av.open(io.BytesIO(data), mode="r", options=_PROBE_OPTIONS, metadata_errors="ignore")
    except av.FFmpegError as exc:
        if kind is None:
            raise UnsupportedMedia(
                "the input is not a recognised audio file; send wav, flac, mp3, ogg (vorbis or opus), "
                "webm (opus), m4a or adts (aac)"
            ) from exc
        raise DecodeFailed(f"the input looks like {kind} but its header is corrupt or truncated") from exc
    with container:
        return _decode_container(container, limits, target_rate)


def sniff(data: bytes) -> str | None:
    """Name the audio container the first bytes announce, or None."""
    for offset, magic, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def _decode_container(
    container: av.container.InputContainer, limits: AudioLimits, target_rate: int | None
) -> DecodedAudio:
    if len(container.streams) >= MAX_STREAMS:
        raise UnsupportedMedia(
            f"the file has {MAX_STREAMS} or more streams; send a file with one audio stream"
        )
    if not container.streams.audio:
        raise UnsupportedMedia("the file has no audio stream; send an audio file")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # a format tag FFmpeg knows no decoder for (0xFFFF, say)
        raise UnsupportedMedia("the audio codec is unknown; use PCM wav, flac, mp3, vorbis, opus or aac")
    codec = stream.codec_context.name
    if codec not in ALLOWED_CODECS:
        raise UnsupportedMedia(
            f"audio codec {codec!r} is not supported; use PCM wav, flac, mp3, vorbis, opus or aac"
        )
    rate = int(stream.codec_context.sample_rate or 0)
    channels = len(stream.codec_context.layout.channels)
    _check_parameters(rate, channels, limits)
    _check_declared_length(container, stream, limits.max_seconds)
    out_rate = target_rate or rate
    counter = _SampleCounter(rate, limits.max_seconds)
    resampler = StreamResampler(rate, out_rate)
    # Packed float: one interleaved plane whatever the channel count (PyAV reads past the end of
    # planar frames with 8 planes, so planar output is never asked for).
    to_float = av.AudioResampler(format="flt")
    out = _Growing()
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if not isinstance(frame, av.AudioFrame):
                    continue
                if frame.sample_rate != rate or len(frame.layout.channels) != channels:
                    raise DecodeFailed("the audio changes sample rate or channel count midway; re-encode it")
                counter.add(frame.samples)
                for converted in to_float.resample(frame):
                    out.extend(resampler.push(_mono(converted, channels)))
    except av.FFmpegError as exc:
        raise DecodeFailed(
            f"the audio stream is corrupt ({exc.strerror or 'decoder error'}); re-encode it"
        ) from exc
    if counter.samples == 0:
        raise DecodeFailed("the file contains no audio samples; send a recording with sound in it")
    out.extend(resampler.push(np.zeros(0, dtype=np.float32), last=True))
    _check_truncation(stream, counter.seconds)
    samples = out.take()
    np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(
        audio=Audio(samples, out_rate),
        container=container.format.name,
        codec=codec,
        source_rate=rate,
        channels=channels,
        metadata={str(k).lower(): str(v) for k, v in [*container.metadata.items(), *stream.metadata.items()]},
    )


def _check_declared_length(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, max_seconds: float
) -> None:
    """Refuse an input whose header declares more than `max_seconds` (a streaming writer's unknown
    length, a sentinel of a day or more, is not a declaration)."""
    declared = 0.0
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    if max_seconds < declared < _SENTINEL_SECONDS:
        raise AudioTooLong(
            f"the file declares {declared:.0f} s of audio, over the limit of {max_seconds:g} s; split it "
            "and send the parts"
        )


class _Growing:
    """Mono samples appended in pieces, held in one buffer that doubles when full."""

    def __init__(self) -> None:
        self._buffer: Samples = np.empty(1 << 16, dtype=np.float32)
        self._size = 0

    def extend(self, piece: Samples) -> None:
        end = self._size + len(piece)
        if end > len(self._buffer):
            grown = np.empty(max(end, 2 * len(self._buffer)), dtype=np.float32)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown
        self._buffer[self._size : end] = piece
        self._size = end

    def take(self) -> Samples:
        """The samples, in an array of their own size (the buffer is let go)."""
        samples: Samples = self._buffer[: self._size].copy()
        self._buffer = np.empty(0, dtype=np.float32)
        return samples


def _check_parameters(rate: int, channels: int, limits: AudioLimits) -> None:
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise DecodeFailed(
            f"sample rate {rate} Hz is outside "
            f"{limits.min_sample_rate}..{limits.max_sample_rate} Hz; resample it"
        )
    if not 1 <= channels <= limits.max_channels:
        raise DecodeFailed(f"{channels} channels is outside 1..{limits.max_channels}; downmix it")


def _mono(frame: av.AudioFrame, channels: int) -> Samples:
    """The average of the channels of a packed float frame."""
    interleaved = frame.to_ndarray().reshape(-1, channels)
    mono = interleaved[:, 0] if channels == 1 else interleaved.mean(axis=1)
    out: Samples = np.nan_to_num(mono.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return out


def _check_truncation(stream: av.audio.stream.AudioStream, decoded_seconds: float) -> None:
    if stream.duration is None or stream.time_base is None:
        return
    declared = float(stream.duration * stream.time_base)
    if 0 < declared < _SENTINEL_SECONDS and decoded_seconds < declared * _TRUNCATION_TOLERANCE - 0.05:
        raise DecodeFailed(
            f"the file is truncated: its header declares {declared:.2f} s but only {decoded_seconds:.2f} s "
            "of audio is present; send the complete file"
        )


def check_wav_header(data: bytes) -> None:
    """Refuse a RIFF/WAVE file whose `fmt` chunk declares a sample size FFmpeg would misread (7-bit
    PCM decodes as 8-bit), or whose `data` chunk declares more bytes than the file holds.

    Streaming writers leave the data size at 0 or 0xFFFFFFFF (unknown); those are accepted.
    """
    if len(data) < 12 or data[8:12] != b"WAVE":
        return
    offset = 12
    for _ in range(64):  # a real file has a handful of chunks before `data`
        if offset + 8 > len(data):
            return
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"fmt ":
            _check_wav_format(data[offset + 8 : offset + 8 + size])
        if chunk == b"data":
            present = len(data) - offset - 8
            if 0 < size < 0x7FFFF000 and present < size * _TRUNCATION_TOLERANCE:
                raise DecodeFailed(
                    f"the WAV file is truncated: it declares {size} bytes of audio but holds {present}; "
                    "send the complete file"
                )
            return
        offset += 8 + size + (size & 1)


_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE
_WAV_BITS = {_WAV_PCM: (8, 16, 24, 32), _WAV_FLOAT: (32, 64)}


def _check_wav_format(fmt: bytes) -> None:
    if len(fmt) < 16:
        raise DecodeFailed("the WAV file's fmt chunk is shorter than 16 bytes; re-encode it")
    tag = int.from_bytes(fmt[0:2], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID starts with the format tag
    allowed = _WAV_BITS.get(tag)
    if allowed is not None and bits not in allowed:
        raise DecodeFailed(
            f"the WAV file declares {bits}-bit samples, which this server does not decode "
            f"({'/'.join(map(str, allowed))}-bit only); re-encode it as 16-bit PCM"
        )


class _SampleCounter:
    """Counts decoded samples and stops at the duration cap."""

    def __init__(self, rate: int, max_seconds: float) -> None:
        self.rate = rate
        self.max_samples = int(max_seconds * rate)
        self.max_seconds = max_seconds
        self.samples = 0

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def add(self, n: int) -> None:
        self.samples += n
        if self.samples > self.max_samples:
            raise AudioTooLong(
                f"the audio is longer than the limit of {self.max_seconds:g} s; split it and send the parts"
            )
