"""Every installed engine behind one `Synthesizer`: a voice is spoken by the engine that has it.

Voice ids are unique across engines (Piper's `en_US-joe-medium`, Kokoro's `af_heart`); an id two
engines both claim goes to the first (and is logged)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from speech_backend.errors import VoiceNotFound
from speech_backend.protocols import SynthesisOptions, Synthesizer
from speech_backend.results import SpeechChunk, Voice

logger = logging.getLogger(__name__)


class VoiceEngines:
    """Synthesizers side by side, one catalogue of their voices."""

    def __init__(self, engines: Sequence[Synthesizer]) -> None:
        self._engines = tuple(engines)
        self._owner: dict[str, Synthesizer] = {}
        self._voices: list[Voice] = []
        for engine in self._engines:
            for voice in engine.voices():
                if voice.id in self._owner:
                    logger.warning("voice %s of %s is hidden by another engine's", voice.id, engine.engine)
                    continue
                self._owner[voice.id] = engine
                self._voices.append(voice)

    @property
    def engine(self) -> str:
        """The first engine's name (each voice names its own engine)."""
        return self._engines[0].engine

    def voices(self) -> tuple[Voice, ...]:
        """Every engine's voices, in engine order."""
        return tuple(self._voices)

    def load(self, voice_id: str) -> None:
        """Load `voice_id` in its engine."""
        self._engine_of(voice_id).load(voice_id)

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """`voice_id`'s engine's chunks."""
        return self._engine_of(voice_id).synthesize(text, voice_id, options)

    def _engine_of(self, voice_id: str) -> Synthesizer:
        engine = self._owner.get(voice_id)
        if engine is None:
            raise VoiceNotFound(f"no voice with id {voice_id!r}; list_voices lists them")
        return engine
