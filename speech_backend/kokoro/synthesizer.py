"""Kokoro-82M (int8 ONNX on onnxruntime) text-to-speech: a voice speaks text in its own language,
phonemized by that language's G2P (`g2p.py`), sentence by sentence, with word timings from the
durations the model predicts (exposed as a second output of its graph, as Piper's are).

Japanese and Chinese voices are served where their G2Ps are installed (the `cjk` extra).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.config import KokoroSettings
from speech_backend.devices import Device
from speech_backend.errors import InvalidArgument, ModelNotFound, VoiceNotFound
from speech_backend.kokoro import g2p
from speech_backend.kokoro.files import (
    DURATIONS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    VoiceEntry,
    check_voice,
    manifest,
    vocabulary,
)
from speech_backend.lexicon import Lexicon
from speech_backend.protocols import SynthesisOptions
from speech_backend.results import Audio, SpeechChunk, Voice
from speech_backend.running import RunningSentences
from speech_backend.text import continuing, lead_in, normalize_text, split_sentences
from speech_backend.word_spans import place_words, spoken_spans

logger = logging.getLogger(__name__)

MAX_TOKENS = 510  # the model's context, its two pad tokens aside
MIN_SPEED, MAX_SPEED = 0.5, 2.0
LICENCE = "Apache-2.0"
ATTRIBUTION = "Kokoro-82M by hexgrad (Apache-2.0); int8 ONNX export from kokoro-onnx (MIT)"


class KokoroSynthesizer:
    """Speaks with Kokoro's voices; the model loads on first use (or `load`), each voice's style
    vectors on its first call."""

    engine = "kokoro"

    def __init__(
        self,
        model: Path,
        voices_dir: Path,
        settings: KokoroSettings,
        device: Device,
        lexicon: Lexicon | None = None,
        running: RunningSentences | None = None,
    ) -> None:
        self._model = model
        self._running_anywhere = running or RunningSentences()
        self._lexicon = lexicon or Lexicon()
        self._voices_dir = voices_dir
        self._settings = settings
        self._device = device
        self._vocab = vocabulary()
        languages = {e.language.split("-")[0] for e in manifest().values()}
        missing = sorted(lang for lang in languages if not g2p.available(lang))
        if missing:
            logger.warning("Kokoro's %s voices are not served: install the cjk extra", ", ".join(missing))
        self._entries = {
            vid: entry
            for vid, entry in manifest().items()
            if entry.language.split("-")[0] not in missing and (voices_dir / f"{vid}.bin").is_file()
        }
        self._g2ps: dict[str, g2p.G2P] = {}
        self._session: Any = None
        self._styles: dict[str, np.ndarray[Any, Any]] = {}
        self._lock = threading.Lock()
        self._running = threading.BoundedSemaphore(settings.concurrent_sentences)

    def voices(self) -> tuple[Voice, ...]:
        """The voices whose style files are present, in languages with a G2P here."""
        return tuple(_voice(e) for e in self._entries.values())

    def load(self, voice_id: str) -> None:
        """Load the model and `voice_id`'s style vectors now rather than on the first call."""
        self._style(voice_id)
        self._ort()

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence of `text` (the first in two with `options.lead_in_words`).

        Raises:
            InvalidArgument: speed out of range, a speaker asked of a one-speaker voice.
            VoiceNotFound: `voice_id` is not a served Kokoro voice.
        """
        if not MIN_SPEED <= options.speed <= MAX_SPEED:
            raise InvalidArgument(f"speed must be between {MIN_SPEED} and {MAX_SPEED}; got {options.speed:g}")
        if options.speaker is not None:
            raise InvalidArgument(f"voice {voice_id!r} has one speaker; leave speaker unset")
        style = self._style(voice_id)
        entry = self._entries[voice_id]
        whole = split_sentences(normalize_text(text), self._settings.max_sentence_chars // _density(entry))
        sentences = lead_in(whole, options.lead_in_words)
        return self._chunks(entry, style, sentences, options.speed, len(sentences) - len(whole))

    def _chunks(
        self,
        entry: VoiceEntry,
        style: np.ndarray[Any, Any],
        sentences: list[str],
        speed: float,
        continued: int,
    ) -> Iterator[SpeechChunk]:
        offset = 0.0
        language = self._g2p(entry)
        for index, sentence in enumerate(sentences):
            spoken = self._lexicon.apply(continuing(sentence) if index < continued else sentence)
            phonemes = "".join(p for p in language.phonemes(spoken) if p in self._vocab)
            if len(phonemes) > MAX_TOKENS:  # (sentences are split well below it)
                raise InvalidArgument("a sentence is too long for this voice to say at once; add punctuation")
            samples, frames = self._speak(phonemes, style, speed)
            timed = zip(phonemes, (round(f) * SAMPLES_PER_FRAME for f in frames[1:-1]), strict=True)
            tokens = language.words(sentence)
            words = place_words(
                tokens,
                spoken_spans(timed),
                language.counts(tokens, self._lexicon.apply),
                SAMPLE_RATE,
                offset + round(frames[0]) * SAMPLES_PER_FRAME / SAMPLE_RATE,
                language.joiner,
            )
            chunk = SpeechChunk(index, sentence, Audio(samples, SAMPLE_RATE), start=offset, words=words)
            offset = chunk.end
            yield chunk

    def _speak(
        self, phonemes: str, style: np.ndarray[Any, Any], speed: float
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The audio of `phonemes`, and each token's duration in frames (the pads' included)."""
        if not phonemes:
            return np.zeros(0, dtype=np.float32), np.zeros(2, dtype=np.float32)
        tokens = np.array([[0, *(self._vocab[p] for p in phonemes), 0]], dtype=np.int64)
        feed = {
            "tokens": tokens,
            "style": style[min(len(phonemes), len(style) - 1)][None, :],
            "speed": np.array([speed], dtype=np.float32),
        }
        session = self._ort()
        # (threads past the cores would only slow every sentence down)
        with self._running, self._running_anywhere.sentence():
            audio, frames = session.run(None, feed)
        return np.asarray(audio, dtype=np.float32).reshape(-1), np.asarray(frames).reshape(-1)

    def _style(self, voice_id: str) -> np.ndarray[Any, Any]:
        entry = self._entries.get(voice_id)
        if entry is None:
            raise VoiceNotFound(f"no Kokoro voice with id {voice_id!r}; list_voices lists them")
        with self._lock:
            if voice_id not in self._styles:
                path = self._voices_dir / f"{voice_id}.bin"
                check_voice(path, entry)
                self._styles[voice_id] = np.fromfile(path, dtype="<f4").reshape(-1, 256)
            return self._styles[voice_id]

    def _g2p(self, entry: VoiceEntry) -> g2p.G2P:
        with self._lock:  # one per espeak voice (en-us and en-gb differ), Japanese, Chinese
            if entry.espeak not in self._g2ps:
                self._g2ps[entry.espeak] = g2p.build(entry.language.split("-")[0], entry.espeak)
            return self._g2ps[entry.espeak]

    def _ort(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = _session(self._model, self._settings.intra_op_threads, self._device)
            return self._session


def _session(model: Path, threads: int, device: Device) -> Any:
    """The model's session (its file has the token durations as a second output)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=list(device.onnx_providers)
        )
    except Exception as exc:  # onnxruntime's untyped errors for an unreadable file
        raise ModelNotFound(
            f"Kokoro model {model} is not a readable ONNX graph; delete it to make it again"
        ) from exc
    if DURATIONS not in {o.name for o in session.get_outputs()}:
        raise ModelNotFound(f"Kokoro model {model} has no durations output; delete it to make it again")
    logger.info("loaded Kokoro on %s (providers %s)", device.kind, ",".join(session.get_providers()))
    return session


def _density(entry: VoiceEntry) -> int:
    """How many times more phonemes a character makes in the voice's script than in Latin script's
    (a kanji or hanzi is a syllable or two), so that a sentence's bound in characters holds."""
    return 3 if entry.language.split("-")[0] in ("ja", "zh") else 1


def _voice(entry: VoiceEntry) -> Voice:
    return Voice(
        id=entry.id,
        name=entry.name,
        language=entry.language.replace("-", "_"),
        sample_rate=SAMPLE_RATE,
        quality="medium",
        speakers=(),
        licence=LICENCE,
        attribution=ATTRIBUTION,
        engine="kokoro",
        gender="female" if entry.gender == "female" else "male",
    )
