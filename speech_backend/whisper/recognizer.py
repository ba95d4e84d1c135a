"""faster-whisper (CTranslate2) speech recognition; the only module that imports `faster_whisper`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.catalog import WhisperModelDir
from speech_backend.config import WhisperSettings
from speech_backend.devices import Device
from speech_backend.errors import InvalidArgument, ModelNotFound
from speech_backend.languages import resolve_language
from speech_backend.protocols import RECOGNITION_RATE, ProgressHook, RecognitionOptions
from speech_backend.results import Audio, Segment, Transcript, Word

logger = logging.getLogger(__name__)

SAMPLE_RATE = RECOGNITION_RATE
_SETTING = "SPEECH_TOOLS_ENGINES__WHISPER__MODEL"


# Whisper writes Mandarin in either Chinese script, and Hindi often in Urdu's or in Latin letters; a
# sentence in the script expected, given as the prompt when a call brings none, steers it
# (round trips of Kokoro's voices, `benchmarks/round_trip.py`: Chinese CER 0.29 -> 0.10, Hindi WER
# 1.0 -> 0.71, the rest of Hindi's error being Whisper base's).
SCRIPT_PROMPTS = {"zh": "以下是普通话的句子。", "hi": "यह हिंदी में बोला गया वाक्य है।"}


class WhisperRecognizer:
    """Recognises 16 kHz mono audio with a local CTranslate2 Whisper model."""

    engine = "whisper"

    def __init__(self, model: WhisperModelDir, settings: WhisperSettings, device: Device) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        missing = [f for f in ("model.bin", "config.json") if not (model.path / f).is_file()]
        if missing or not _has_tokenizer(model.path):
            raise ModelNotFound(
                f"Whisper model folder {model.path} lacks "
                f"{', '.join(missing) or 'tokenizer.json/vocabulary.txt'}; "
                f"reinstall it or fix {_SETTING}"
            )
        compute_type = settings.compute_type
        if compute_type == "default":
            compute_type = "float16" if device.kind == "cuda" else "int8"
        try:
            self._model = WhisperModel(
                str(model.path),
                device=device.ct2_device,
                compute_type=compute_type,
                cpu_threads=settings.cpu_threads,
                num_workers=settings.num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelNotFound(
                f"Whisper model {model.path} could not be loaded ({type(exc).__name__}); "
                f"reinstall it or fix {_SETTING}"
            ) from exc
        self._batched = BatchedInferencePipeline(model=self._model)
        self._settings = settings
        self._id = model.id
        logger.info(
            "loaded whisper %s on %s (%s, %d workers x %d threads)",
            model.id,
            device.kind,
            compute_type,
            settings.num_workers,
            settings.cpu_threads,
        )

    @property
    def model_id(self) -> str:
        """The id of the loaded model."""
        return self._id

    @property
    def multilingual(self) -> bool:
        """True when the model detects and transcribes languages other than English."""
        return bool(self._model.model.is_multilingual)

    def check_options(self, options: RecognitionOptions) -> None:
        """Refuse an unknown language, or a non-English one on an English-only model.

        Raises:
            InvalidArgument: naming what to do instead.
        """
        self._language(options.language)

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Recognise all of `audio`; `progress` is called after each segment and may raise to stop.

        Raises:
            InvalidArgument: the audio is not 16 kHz, or the language is unknown or not served by the model.
        """
        if audio.sample_rate != SAMPLE_RATE:
            raise InvalidArgument(f"recognition needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz")
        language = self._language(options.language)
        duration = audio.duration
        samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
        kwargs: dict[str, Any] = {
            "language": language,
            "beam_size": options.beam_size or self._settings.beam_size,
            "word_timestamps": options.word_timestamps,
            "initial_prompt": options.initial_prompt or SCRIPT_PROMPTS.get(language or ""),
            "vad_filter": self._settings.vad_filter if options.vad_filter is None else options.vad_filter,
        }
        batched = 0 < self._settings.batched_min_seconds <= duration
        if batched:
            kwargs |= {"batch_size": self._settings.batch_size, "vad_filter": True}
            segments, info = self._batched.transcribe(samples, **kwargs)
        else:
            segments, info = self._model.transcribe(samples, **kwargs)
        out: list[Segment] = []
        for raw in segments:  # lazy: each step decodes one window
            out.append(_segment(raw))
            if progress is not None:
                progress(min(float(raw.end), duration), duration)
        return Transcript(
            text=" ".join(s.text for s in out if s.text),
            language=str(info.language),
            language_probability=float(info.language_probability),
            duration=duration,
            segments=tuple(out),
        )

    @property
    def languages(self) -> tuple[str, ...]:
        """The language codes the model knows."""
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return tuple(_LANGUAGE_CODES)

    def _language(self, language: str | None) -> str | None:
        return resolve_language(language, self.languages, self.multilingual, self._id)


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "vocabulary.txt").is_file()


def _segment(raw: Any) -> Segment:
    words = tuple(
        Word(text=w.word.strip(), start=float(w.start), end=float(w.end), probability=float(w.probability))
        for w in (raw.words or ())
    )
    return Segment(
        start=float(raw.start),
        end=float(raw.end),
        text=str(raw.text).strip(),
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        words=words,
    )
