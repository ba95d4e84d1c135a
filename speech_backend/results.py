"""Plain, frozen result types that every engine returns; no third-party objects leave an engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
EngineName = Literal["piper", "kokoro", "whisper", "fake"]


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono float32 samples in [-1, 1] at a sample rate."""

    samples: Samples
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class WordTiming:
    """Where a spoken word sits in synthesized audio."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, eq=False)
class SpeechChunk:
    """One synthesized sentence: its audio, its text and where it sits in the whole utterance."""

    index: int
    text: str
    audio: Audio
    start: float
    words: tuple[WordTiming, ...] = ()

    @property
    def end(self) -> float:
        """End offset of this sentence in the utterance, in seconds."""
        return self.start + self.audio.duration


@dataclass(frozen=True)
class Voice:
    """A voice in the catalog. The id is a lookup key, never a path."""

    id: str
    name: str
    language: str
    sample_rate: int
    quality: str
    speakers: tuple[str, ...]
    licence: str
    attribution: str
    engine: EngineName = "piper"
    gender: Literal["female", "male"] | None = None  # where the voice's maker says


@dataclass(frozen=True)
class Word:
    """A recognised word with its timing and probability."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """A recognised segment of speech."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """The result of recognising one piece of audio."""

    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word of every segment, in order."""
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class HeardEnd:
    """The words of a turn so far as a fast recognizer heard them, and how sure it was of the last
    one (see `moonshine.word_confidence`): a word cut short by a pause is often misheard."""

    text: str
    last_word_probability: float = 1.0
