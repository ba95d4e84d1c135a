"""Decoding: every allowlisted format decodes; every hostile input gets its typed error."""

from __future__ import annotations

import numpy as np
import pytest

from speech_backend import (
    AudioLimits,
    AudioTooLong,
    DecodeFailed,
    InvalidArgument,
    PayloadTooLarge,
    UnsupportedMedia,
    decode_audio,
    encode_audio,
)
from tests.conftest import tone
from tests.media import container_bytes, wav_bytes, wav_header

LIMITS = AudioLimits()
TWO_SECONDS = tone(2.0, rate=22050)


@pytest.mark.parametrize(
    ("muxer", "codec", "rate", "channels"),
    [
        ("wav", "pcm_s16le", 22050, 1),
        ("wav", "pcm_f32le", 44100, 1),
        ("flac", "flac", 22050, 1),
        ("mp3", "libmp3lame", 22050, 1),
        ("ogg", "vorbis", 44100, 2),
        ("ogg", "libopus", 48000, 1),
        ("webm", "libopus", 48000, 2),
        ("ipod", "aac", 44100, 1),
        ("adts", "aac", 24000, 1),  # raw AAC frames, as streamed `aac` speech is
    ],
)
def test_every_allowlisted_container_and_codec_decodes_to_16k_mono_of_the_right_length(
    muxer, codec, rate, channels
):
    data = container_bytes(tone(2.0, rate=rate), muxer, codec, channels=channels)
    decoded = decode_audio(data, LIMITS, target_rate=16000)
    assert decoded.audio.sample_rate == 16000
    assert decoded.audio.samples.dtype == np.float32
    assert decoded.audio.duration == pytest.approx(2.0, abs=0.06)
    assert decoded.source_rate == rate


def test_stereo_is_downmixed_to_mono_without_clipping():
    data = container_bytes(tone(1.0, rate=16000, amplitude=0.9), "wav", "pcm_s16le", channels=2)
    decoded = decode_audio(data, LIMITS)
    assert decoded.channels == 2
    assert 0.85 < float(np.max(np.abs(decoded.audio.samples))) <= 0.91


def test_decoded_audio_keeps_its_loudness_through_resampling():
    decoded = decode_audio(container_bytes(TWO_SECONDS, "flac", "flac"), LIMITS, target_rate=16000)
    rms = float(np.sqrt(np.mean(decoded.audio.samples[1000:-1000] ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_empty_input_is_an_invalid_argument():
    with pytest.raises(InvalidArgument):
        decode_audio(b"", LIMITS)


def test_input_over_the_byte_cap_is_refused_before_decoding():
    with pytest.raises(PayloadTooLarge) as info:
        decode_audio(b"RIFF" + b"\0" * 2000, AudioLimits(max_bytes=1000))
    assert "1000" in info.value.message


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        b"This is plain text, not audio at all. " * 50,
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
    ],
    ids=["png", "text", "noise-bytes"],
)
def test_non_audio_is_unsupported_media(data):
    with pytest.raises(UnsupportedMedia):
        decode_audio(data, LIMITS)


def test_a_container_outside_the_allowlist_is_unsupported_media():
    aiff = container_bytes(TWO_SECONDS, "aiff", "pcm_s16be")
    with pytest.raises(UnsupportedMedia):
        decode_audio(aiff, LIMITS)


def test_a_codec_outside_the_allowlist_is_unsupported_media_even_in_an_allowed_container():
    mp2_in_mkv = container_bytes(TWO_SECONDS, "matroska", "mp2")
    with pytest.raises(UnsupportedMedia) as info:
        decode_audio(mp2_in_mkv, LIMITS)
    assert "mp2" in info.value.message


@pytest.mark.parametrize("cut", [4, 20, 43])
def test_a_wav_cut_inside_its_header_is_decode_failed(cut):
    data = wav_bytes(TWO_SECONDS.samples, 22050)
    with pytest.raises(DecodeFailed):
        decode_audio(data[:cut], LIMITS)


def test_a_wav_cut_inside_its_data_is_reported_truncated_not_returned_short():
    data = wav_bytes(TWO_SECONDS.samples, 22050)
    with pytest.raises(DecodeFailed, match="truncated"):
        decode_audio(data[: len(data) // 2], LIMITS)


def test_a_flac_cut_in_half_is_decode_failed():
    data = encode_audio(TWO_SECONDS, "flac")
    with pytest.raises(DecodeFailed):
        decode_audio(data[: len(data) // 2], LIMITS)


def test_a_header_that_lies_about_a_huge_length_is_truncated_not_trusted():
    pcm = (TWO_SECONDS.samples * 32767).astype("<i2").tobytes()
    lying = wav_header(rate=22050, channels=1, data_size=2_000_000_000) + pcm
    with pytest.raises(DecodeFailed, match="truncated"):
        decode_audio(lying, LIMITS)


def test_a_streaming_wav_with_unknown_length_decodes_what_is_there():
    pcm = (TWO_SECONDS.samples * 32767).astype("<i2").tobytes()
    streamed = wav_header(rate=22050, channels=1, data_size=0xFFFFFFFF) + pcm
    assert decode_audio(streamed, LIMITS).audio.duration == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    ("rate", "channels", "fragment"),
    [(1, 1, "sample rate"), (4000, 1, "sample rate"), (384000, 1, "sample rate"), (16000, 12, "channels")],
)
def test_absurd_parameters_are_decode_failed_and_named(rate, channels, fragment):
    pcm = np.zeros(rate * channels // 10 + 2, dtype="<i2").tobytes()
    data = wav_header(rate=rate, channels=channels, data_size=len(pcm)) + pcm
    with pytest.raises(DecodeFailed, match=fragment):
        decode_audio(data, LIMITS)


def test_a_wav_with_zero_channels_is_refused():
    data = wav_header(rate=16000, channels=0, data_size=64) + bytes(64)
    with pytest.raises((DecodeFailed, UnsupportedMedia)):
        decode_audio(data, LIMITS)


def test_a_file_with_no_samples_is_decode_failed():
    data = wav_header(rate=16000, channels=1, data_size=0)
    with pytest.raises(DecodeFailed):
        decode_audio(data, LIMITS)


def test_audio_over_the_duration_cap_is_refused_while_decoding():
    data = container_bytes(tone(5.0, rate=16000), "flac", "flac")
    with pytest.raises(AudioTooLong):
        decode_audio(data, AudioLimits(max_seconds=3.0))


def test_a_decompression_bomb_of_silence_stops_at_the_default_cap():
    # 31 minutes of 8 kHz silence compresses to a few hundred kilobytes of FLAC.
    silence = np.zeros(8000 * 60 * 31, dtype=np.float32)
    from speech_backend import Audio

    bomb = encode_audio(Audio(silence, 8000), "flac")
    assert len(bomb) < LIMITS.max_bytes // 10
    with pytest.raises(AudioTooLong):
        decode_audio(bomb, LIMITS)


def test_a_file_with_a_few_audio_streams_decodes_the_first_only():
    data = container_bytes(TWO_SECONDS, "matroska", "flac", streams=3)
    assert decode_audio(data, LIMITS).audio.duration == pytest.approx(2.0, abs=0.05)


def test_a_file_with_more_streams_than_the_limit_is_refused_rather_than_cut_short():
    data = container_bytes(TWO_SECONDS, "matroska", "flac", streams=40)
    with pytest.raises(UnsupportedMedia, match="streams"):
        decode_audio(data, LIMITS)


def test_non_finite_float_samples_are_made_finite():
    samples = np.array([0.1, np.nan, np.inf, -np.inf] * 4000, dtype="<f4")
    from tests.media import wav_header as header

    data = header(rate=16000, channels=1, bits=32, data_size=samples.nbytes, fmt_tag=3) + samples.tobytes()
    out = decode_audio(data, LIMITS).audio.samples
    assert np.all(np.isfinite(out)) and float(np.max(np.abs(out))) <= 1.0
