"""Piper (VITS on onnxruntime) text-to-speech; the only module that imports `piper`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.catalog import VoiceCatalog, VoiceFiles
from speech_backend.config import PiperSettings
from speech_backend.devices import Device
from speech_backend.errors import InvalidArgument, ModelNotFound
from speech_backend.protocols import SynthesisOptions
from speech_backend.results import Audio, SpeechChunk, Voice, WordTiming
from speech_backend.text import normalize_text, split_sentences

logger = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.5, 2.0
_SETTING = "SPEECH_TOOLS_ENGINES__PIPER__VOICE_DIRS"


class PiperSynthesizer:
    """Speaks with the Piper voices of a catalog, loading each voice's session on first use."""

    engine = "piper"

    def __init__(
        self, catalog: VoiceCatalog, settings: PiperSettings, device: Device, cache_dir: Path | None = None
    ) -> None:
        self._catalog = catalog
        self._settings = settings
        self._device = device
        self._cache_dir = cache_dir
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def voices(self) -> tuple[Voice, ...]:
        """The catalog's voices."""
        return self._catalog.voices()

    def load(self, voice_id: str) -> None:
        """Load a voice now rather than on its first call (start-up warm-up)."""
        self._voice(voice_id)

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence of `text`.

        Raises:
            InvalidArgument: speed out of range, unknown speaker, or nothing speakable in `text`.
            VoiceNotFound: `voice_id` is not in the catalog.
        """
        if not MIN_SPEED <= options.speed <= MAX_SPEED:
            raise InvalidArgument(f"speed must be between {MIN_SPEED} and {MAX_SPEED}; got {options.speed:g}")
        files = self._catalog.get(voice_id)
        config = self._synthesis_config(files.voice, options)
        sentences = split_sentences(normalize_text(text), self._settings.max_sentence_chars)
        return self._chunks(self._voice(voice_id), sentences, config)

    def _chunks(self, voice: Any, sentences: list[str], config: Any) -> Iterator[SpeechChunk]:
        rate = int(voice.config.sample_rate)
        align = len(voice.session.get_outputs()) > 1
        offset = 0.0
        for index, sentence in enumerate(sentences):
            parts = list(voice.synthesize(sentence, config, include_alignments=align))
            samples = (
                np.concatenate([p.audio_float_array for p in parts]).astype(np.float32, copy=False)
                if parts
                else np.zeros(0, dtype=np.float32)
            )
            words = _word_timings(sentence, parts, rate, offset) if align else ()
            chunk = SpeechChunk(index, sentence, Audio(samples, rate), start=offset, words=words)
            offset = chunk.end
            yield chunk

    def _synthesis_config(self, voice: Voice, options: SynthesisOptions) -> Any:
        from piper.config import SynthesisConfig

        speaker_id = None
        if options.speaker is not None:
            if options.speaker not in voice.speakers:
                choices = ", ".join(voice.speakers) or "none (single-speaker voice)"
                raise InvalidArgument(
                    f"voice {voice.id!r} has no speaker {options.speaker!r}; speakers: {choices}"
                )
            speaker_id = voice.speakers.index(options.speaker)
        zero = 0.0 if options.deterministic else None
        return SynthesisConfig(
            speaker_id=speaker_id, length_scale=1.0 / options.speed, noise_scale=zero, noise_w_scale=zero
        )

    def _voice(self, voice_id: str) -> Any:
        with self._lock:
            if voice_id in self._loaded:
                self._loaded.move_to_end(voice_id)
                return self._loaded[voice_id]
            voice = self._load(self._catalog.get(voice_id))
            self._loaded[voice_id] = voice
            while len(self._loaded) > self._settings.max_loaded_voices:
                self._loaded.popitem(last=False)
            return voice

    def _load(self, files: VoiceFiles) -> Any:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        try:
            config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFound(
                f"voice config {files.config} is unreadable ({type(exc).__name__}); check {_SETTING}"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._settings.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings such as "hardware specific optimizations" are expected
        model_path = self._optimised_path(files.model)
        if model_path is not None and model_path.is_file():
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            source = model_path
        else:
            source = files.model
            if model_path is not None:
                options.optimized_model_filepath = str(model_path.with_suffix(f".{os.getpid()}.tmp"))
        try:
            session = onnxruntime.InferenceSession(
                str(source), sess_options=options, providers=list(self._device.onnx_providers)
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable models
            raise ModelNotFound(
                f"voice model {files.model} could not be loaded ({type(exc).__name__}); "
                f"reinstall it or check {_SETTING}"
            ) from exc
        if model_path is not None and options.optimized_model_filepath:
            _publish(Path(options.optimized_model_filepath), model_path)
        logger.info(
            "loaded voice %s on %s (providers %s, %d threads)",
            files.voice.id,
            self._device.kind,
            ",".join(session.get_providers()),
            self._settings.intra_op_threads,
        )
        return PiperVoice(session=session, config=config)

    def _optimised_path(self, model: Path) -> Path | None:
        """Where the optimised graph of `model` for this device and onnxruntime version is cached."""
        if self._cache_dir is None:
            return None
        import onnxruntime

        stat = model.stat()
        parts = (model.resolve(), stat.st_size, stat.st_mtime_ns, onnxruntime.__version__, self._device.kind)
        key = "|".join(map(str, parts))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = self._cache_dir / "onnx"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return folder / f"{model.stem}-{digest}.onnx"


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.replace(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)


def _word_timings(sentence: str, parts: list[Any], rate: int, offset: float) -> tuple[WordTiming, ...]:
    """Word spans from Piper's phoneme alignments, when the model provides them and words line up."""
    spans: list[tuple[float, float]] = []
    cursor = 0
    start: int | None = None
    for part in parts:
        for aligned in part.phoneme_alignments or []:
            if aligned.phoneme == " " and start is not None:
                spans.append((start / rate, cursor / rate))
                start = None
            elif aligned.phoneme not in {" ", "^", "$", "_"} and start is None:
                start = cursor
            cursor += int(aligned.num_samples)
        if start is not None:
            spans.append((start / rate, cursor / rate))
            start = None
    words = sentence.split()
    if len(words) != len(spans):
        return ()
    return tuple(WordTiming(w, offset + s, offset + e) for w, (s, e) in zip(words, spans, strict=True))
