"""An English-only Whisper model for English (fast), and the multilingual one for every other
language, behind one `Recognizer`: a language hint chooses; no hint keeps the English model (as
before). The multilingual model loads on the first call that needs it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from speech_backend.languages import resolve_language
from speech_backend.protocols import ProgressHook, RecognitionOptions, Recognizer
from speech_backend.results import Audio, Transcript


class LanguageRecognizers:
    """`english` for English and no hint; `other()` (made once, on first need) for any other language."""

    def __init__(self, english: Recognizer, other: Callable[[], Recognizer]) -> None:
        self._english = english
        self._make_other = other
        self._other: Recognizer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The English model's id (the one that serves calls without a language)."""
        return self._english.model_id

    @property
    def multilingual(self) -> bool:
        """True: languages other than English are served (by the multilingual model)."""
        return True

    @property
    def languages(self) -> tuple[str, ...]:
        """Whisper's language codes."""
        return self._english.languages

    def check_options(self, options: RecognitionOptions) -> None:
        """Refuse an unknown language code (without loading the multilingual model).

        Raises:
            InvalidArgument: naming what to do instead.
        """
        resolve_language(options.language, self.languages, True, self.model_id)

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Recognise `audio` with the model its language hint calls for."""
        language = resolve_language(options.language, self.languages, True, self.model_id)
        if language in (None, "en"):
            return self._english.transcribe(audio, options, progress)
        return self._multilingual().transcribe(audio, options, progress)

    def _multilingual(self) -> Recognizer:
        with self._lock:
            if self._other is None:
                self._other = self._make_other()
            return self._other
