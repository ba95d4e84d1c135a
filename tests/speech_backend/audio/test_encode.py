"""Encoding: every format writes, decodes back to the same length, and carries the synthetic marker."""

from __future__ import annotations

import numpy as np
import pytest

from speech_backend import (
    AUDIO_FORMATS,
    AudioLimits,
    InvalidArgument,
    decode_audio,
    encode_audio,
    is_marked_synthetic,
    synthetic_metadata,
)
from tests.conftest import tone

SOURCE = tone(1.5, rate=22050)
MARKER = synthetic_metadata("en_US-joe-medium", "piper")


@pytest.mark.parametrize("fmt", [f for f in AUDIO_FORMATS if f != "pcm"])
def test_every_container_format_round_trips_with_its_length_and_the_synthetic_marker(fmt):
    data = encode_audio(SOURCE, fmt, metadata=MARKER)
    decoded = decode_audio(data, AudioLimits())
    # AAC adds encoder priming and frame padding (silence) at the ends; nothing is lost.
    slack = 0.1 if fmt == "aac" else 0.03
    assert 1.5 - 0.03 <= decoded.audio.duration <= 1.5 + slack
    assert is_marked_synthetic(decoded.metadata)
    assert "voice=en_US-joe-medium" in decoded.metadata["comment"]


def test_the_decoded_waveform_matches_what_was_encoded():
    decoded = decode_audio(encode_audio(SOURCE, "flac"), AudioLimits())
    assert np.max(np.abs(decoded.audio.samples - SOURCE.samples)) < 1e-3


def test_raw_pcm_is_headerless_little_endian_16_bit_at_the_requested_rate():
    data = encode_audio(SOURCE, "pcm", sample_rate=16000)
    samples = np.frombuffer(data, dtype="<i2")
    assert len(samples) == pytest.approx(1.5 * 16000, abs=2)
    assert 0.45 < np.max(np.abs(samples)) / 32767 < 0.51


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 8000), ("flac", 48000), ("mp3", 44100), ("opus", 24000)])
def test_a_requested_sample_rate_is_the_rate_written(fmt, rate):
    decoded = decode_audio(encode_audio(SOURCE, fmt, sample_rate=rate), AudioLimits())
    expected = 48000 if fmt == "opus" else rate  # Opus always decodes at 48 kHz
    assert decoded.source_rate == expected


def test_opus_without_a_rate_uses_the_nearest_rate_opus_takes():
    from speech_backend import output_rate

    assert output_rate("opus", 22050, None) == 24000
    assert output_rate("mp3", 22050, None) == 22050


@pytest.mark.parametrize(("fmt", "rate"), [("opus", 22050), ("mp3", 96000), ("wav", 1000), ("flac", 10**6)])
def test_a_rate_the_codec_cannot_take_is_an_invalid_argument_naming_the_choices(fmt, rate):
    with pytest.raises(InvalidArgument, match="choose"):
        encode_audio(SOURCE, fmt, sample_rate=rate)


def test_an_unknown_format_is_an_invalid_argument():
    with pytest.raises(InvalidArgument):
        encode_audio(SOURCE, "aiff")  # type: ignore[arg-type]
