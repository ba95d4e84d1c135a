"""Encode synthesized audio to wav, flac, mp3, ogg/opus or raw PCM, marked as synthetic speech."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Literal, get_args

import av
import numpy as np
import numpy.typing as npt

from speech_backend.audio.resample import resample
from speech_backend.errors import InvalidArgument
from speech_backend.results import Audio, Samples

AudioFormat = Literal["wav", "flac", "mp3", "opus", "aac", "pcm"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = get_args(AudioFormat)
MIME_TYPES: dict[AudioFormat, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/mp4",
    "pcm": "audio/L16",
}
# (muxer, codec, accepted sample rates or None for any in 8..192 kHz)
CODECS: dict[AudioFormat, tuple[str, str, tuple[int, ...] | None]] = {
    "wav": ("wav", "pcm_s16le", None),
    "flac": ("flac", "flac", None),
    "mp3": ("mp3", "libmp3lame", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "opus": ("ogg", "libopus", (8000, 12000, 16000, 24000, 48000)),
    # AAC in an MP4 (m4a) container, which carries the synthetic-speech tags; raw ADTS could not.
    "aac": ("ipod", "aac", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
}
SYNTHETIC_MARKER = "synthetic-speech"
SUFFIX_FORMATS: dict[str, AudioFormat] = {
    ".wav": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".opus": "opus",
    ".ogg": "opus",
    ".m4a": "aac",
    ".mp4": "aac",
    ".aac": "aac",
    ".pcm": "pcm",
    ".raw": "pcm",
}


def format_for_suffix(suffix: str) -> AudioFormat:
    """The format a file named with `suffix` (`.m4a`, say) is written in.

    Raises:
        InvalidArgument: no format is written under that suffix.
    """
    found = SUFFIX_FORMATS.get(suffix.lower())
    if found is None:
        raise InvalidArgument(
            f"no audio format is written as {suffix!r}; use one of {', '.join(SUFFIX_FORMATS)}, or name "
            "the format (--format on the command line)"
        )
    return found


def synthetic_metadata(voice: str, engine: str) -> dict[str, str]:
    """Container tags that say the audio is synthetic speech, which voice made it, and with what."""
    return {
        "comment": f"{SYNTHETIC_MARKER}; voice={voice}; engine={engine}; generator=speech-tools",
        "encoder": "speech-tools",
        "synthetic_speech": "true",
    }


def is_marked_synthetic(metadata: Mapping[str, str]) -> bool:
    """True when decoded container tags carry the synthetic-speech marker."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    return lowered.get("synthetic_speech") == "true" or lowered.get("comment", "").startswith(
        SYNTHETIC_MARKER
    )


def output_rate(fmt: AudioFormat, source_rate: int, requested: int | None) -> int:
    """The rate a format will be written at: the requested one if the codec takes it.

    Raises:
        InvalidArgument: the codec cannot take the requested rate.
    """
    allowed = CODECS[fmt][2] if fmt in CODECS else None
    if requested is not None:
        if not 8000 <= requested <= 192000 or (allowed is not None and requested not in allowed):
            choices = ", ".join(map(str, allowed)) if allowed else "8000..192000"
            raise InvalidArgument(f"{fmt} cannot be written at {requested} Hz; choose one of {choices}")
        return requested
    if allowed is None or source_rate in allowed:
        return source_rate
    return min((r for r in allowed if r >= source_rate), default=max(allowed))


def encode_audio(
    audio: Audio, fmt: AudioFormat, sample_rate: int | None = None, metadata: Mapping[str, str] | None = None
) -> bytes:
    """Encode mono `audio` as `fmt` at `sample_rate` (the audio's own rate, or the codec's nearest).

    Raw `pcm` is little-endian signed 16-bit with no header, so it carries no marker.

    Raises:
        InvalidArgument: unknown format, or a sample rate the codec does not take.
    """
    if fmt not in AUDIO_FORMATS:
        raise InvalidArgument(f"unknown audio format {fmt!r}; choose one of {', '.join(AUDIO_FORMATS)}")
    rate = output_rate(fmt, audio.sample_rate, sample_rate)
    pcm = to_pcm16(resample(audio, rate).samples)
    if fmt == "pcm":
        return pcm.tobytes()
    muxer, codec, _ = CODECS[fmt]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as container:
        container.metadata.update(dict(metadata or {}))
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        if fmt in ("mp3", "aac"):
            stream.bit_rate = 64000 if rate <= 24000 else 128000
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def to_pcm16(samples: Samples) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] to little-endian int16."""
    out: npt.NDArray[np.int16] = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    return out
