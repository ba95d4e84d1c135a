"""The engine roles: small synchronous protocols that every engine (real or fake) implements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from speech_backend.results import Audio, SpeechChunk, Transcript, Voice

# What every recognizer (and the live VAD) hears: 16 kHz mono.
RECOGNITION_RATE = 16000

# Called by a recognizer after each segment with the seconds of audio done so far and the total.
# It may raise (for example when the caller cancelled) to stop the work between segments.
ProgressHook = Callable[[float, float], None]


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak: speed (1.0 normal, 2.0 twice as fast), speaker, deterministic noise, and
    `lead_in_words`: when above 0, the first sentence is made in two chunks, its first clause (or
    about that many words) first, so streamed speech starts sooner (`text.lead_in`)."""

    speed: float = 1.0
    speaker: str | None = None
    deterministic: bool = False
    lead_in_words: int = 0


@dataclass(frozen=True)
class RecognitionOptions:
    """How to recognise: language hint (None detects), word timings, VAD, beam width, prompt."""

    language: str | None = None
    word_timestamps: bool = False
    vad_filter: bool | None = None
    beam_size: int | None = None
    initial_prompt: str | None = None


@runtime_checkable
class Synthesizer(Protocol):
    """Turns text into speech, one sentence at a time."""

    @property
    def engine(self) -> str:
        """The engine's name, written into the synthetic-speech marker of every file."""
        ...

    def load(self, voice_id: str) -> None:
        """Load a voice ahead of its first use (blocking), so the first call does not pay for it.

        Raises:
            VoiceNotFound: `voice_id` is not in the catalog.
        """
        ...

    def voices(self) -> tuple[Voice, ...]:
        """The voices this synthesizer can speak with."""
        ...

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence, in order; the consumer may stop early between chunks."""
        ...


@runtime_checkable
class Recognizer(Protocol):
    """Turns 16 kHz mono audio into a transcript."""

    @property
    def model_id(self) -> str:
        """The id of the loaded model."""
        ...

    @property
    def multilingual(self) -> bool:
        """True when the model can detect and transcribe languages other than English."""
        ...

    @property
    def languages(self) -> tuple[str, ...]:
        """The language codes the model knows (a language hint must be one of them)."""
        ...

    def check_options(self, options: RecognitionOptions) -> None:
        """Refuse options the model cannot serve (an unknown language, say) before any audio work."""
        ...

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Recognise the whole of `audio` (16 kHz mono)."""
        ...
