"""Speech engines (Piper TTS, faster-whisper ASR), audio decode/encode/resample, voice catalog, devices.

Knows nothing of MCP, HTTP, agents or policies.
"""

from speech_backend.audio.decode import DecodedAudio, decode_audio
from speech_backend.audio.encode import (
    AUDIO_FORMATS,
    MIME_TYPES,
    AudioFormat,
    encode_audio,
    is_marked_synthetic,
    output_rate,
    synthetic_metadata,
    to_pcm16,
)
from speech_backend.audio.resample import resample
from speech_backend.config import AudioLimits, EngineSettings, PiperSettings, WhisperSettings
from speech_backend.devices import Device, resolve_device
from speech_backend.engines import build_recognizer, build_synthesizer
from speech_backend.errors import (
    AudioTooLong,
    BackendUnavailable,
    Cancelled,
    DecodeFailed,
    InvalidArgument,
    ModelNotFound,
    PayloadTooLarge,
    SpeechError,
    TextTooLong,
    UnsupportedMedia,
    VoiceNotFound,
)
from speech_backend.protocols import (
    ProgressHook,
    RecognitionOptions,
    Recognizer,
    SynthesisOptions,
    Synthesizer,
)
from speech_backend.results import Audio, Segment, SpeechChunk, Transcript, Voice, Word, WordTiming

__all__ = [
    "AUDIO_FORMATS",
    "MIME_TYPES",
    "Audio",
    "AudioFormat",
    "AudioLimits",
    "AudioTooLong",
    "BackendUnavailable",
    "Cancelled",
    "DecodeFailed",
    "DecodedAudio",
    "Device",
    "EngineSettings",
    "InvalidArgument",
    "ModelNotFound",
    "PayloadTooLarge",
    "PiperSettings",
    "ProgressHook",
    "RecognitionOptions",
    "Recognizer",
    "Segment",
    "SpeechChunk",
    "SpeechError",
    "SynthesisOptions",
    "Synthesizer",
    "TextTooLong",
    "Transcript",
    "UnsupportedMedia",
    "Voice",
    "VoiceNotFound",
    "WhisperSettings",
    "Word",
    "WordTiming",
    "build_recognizer",
    "build_synthesizer",
    "decode_audio",
    "encode_audio",
    "is_marked_synthetic",
    "output_rate",
    "resample",
    "resolve_device",
    "synthetic_metadata",
    "to_pcm16",
]
