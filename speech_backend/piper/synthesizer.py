"""Piper (VITS on onnxruntime) text-to-speech; with `sessions`, the only modules that import `piper`."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from speech_backend.catalog import VoiceCatalog
from speech_backend.config import PiperSettings
from speech_backend.devices import Device
from speech_backend.errors import InvalidArgument
from speech_backend.lexicon import Lexicon
from speech_backend.piper.sessions import VoiceSessions, load_sessions, share_cpu_arena
from speech_backend.protocols import SynthesisOptions
from speech_backend.results import Audio, SpeechChunk, Voice, WordTiming
from speech_backend.running import RunningSentences
from speech_backend.text import continuing, lead_in, normalize_text, split_sentences
from speech_backend.word_spans import place_words, spoken_spans, spoken_word_count

logger = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.5, 2.0
WARM_NARROW = 2  # narrow sessions a loaded voice starts with


QUIET = 0.01  # amplitude below which a sample counts as silence
JOIN_PAUSE_MS = 40  # quiet kept at the end of a lead-in cut between words


class PiperSynthesizer:
    """Speaks with the Piper voices of a catalog, loading each voice's session on first use."""

    engine = "piper"

    def __init__(
        self,
        catalog: VoiceCatalog,
        settings: PiperSettings,
        device: Device,
        cache_dir: Path | None = None,
        lexicon: Lexicon | None = None,
        running: RunningSentences | None = None,
    ) -> None:
        self._catalog = catalog
        self._lexicon = lexicon or Lexicon()
        self._settings = settings
        self._device = device
        self._cache_dir = cache_dir
        self._loaded: OrderedDict[str, VoiceSessions] = OrderedDict()
        self._lock = threading.Lock()
        self._running = running or RunningSentences()  # sentences being made now, by any engine
        if device.kind == "cpu":
            share_cpu_arena()

    def voices(self) -> tuple[Voice, ...]:
        """The catalog's voices."""
        return self._catalog.voices()

    def load(self, voice_id: str) -> None:
        """Load a voice now rather than on its first call (start-up warm-up). The narrow sessions
        two sentences side by side take are made in the background (as for any voice loaded), so
        the voice serves at once (more are made if more run at once)."""
        self._voice(voice_id)

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence of `text` (the first in two with `options.lead_in_words`).

        Raises:
            InvalidArgument: speed out of range, unknown speaker, or nothing speakable in `text`.
            VoiceNotFound: `voice_id` is not in the catalog.
        """
        if not MIN_SPEED <= options.speed <= MAX_SPEED:
            raise InvalidArgument(f"speed must be between {MIN_SPEED} and {MAX_SPEED}; got {options.speed:g}")
        files = self._catalog.get(voice_id)
        config = self._synthesis_config(files.voice, options)
        whole = split_sentences(normalize_text(text), self._settings.max_sentence_chars)
        sentences = lead_in(whole, options.lead_in_words)
        return self._chunks(self._voice(voice_id), sentences, config, len(sentences) - len(whole))

    def _chunks(
        self, sessions: VoiceSessions, sentences: list[str], config: Any, continued: int
    ) -> Iterator[SpeechChunk]:
        """The chunks; the first `continued` ones are cut from their sentence and spoken as a
        phrase that goes on (`continuing`), not as a sentence's end."""
        voice = sessions.wide
        rate = int(voice.config.sample_rate)
        align = len(voice.session.get_outputs()) > 1
        offset = 0.0
        for index, sentence in enumerate(sentences):
            spoken = self._lexicon.apply(continuing(sentence) if index < continued else sentence)
            with self._session(sessions) as session:
                parts = list(session.synthesize(spoken, config, include_alignments=align))
            samples = (
                np.concatenate([p.audio_float_array for p in parts]).astype(np.float32, copy=False)
                if parts
                else np.zeros(0, dtype=np.float32)
            )
            if spoken != sentence:  # cut between words: the next word follows without a pause
                samples = _trim_pause(samples, rate)
            words = _word_timings(voice, sentence, parts, rate, offset, self._lexicon) if align else ()
            chunk = SpeechChunk(index, sentence, Audio(samples, rate), start=offset, words=words)
            offset = chunk.end
            yield chunk

    @contextmanager
    def _session(self, sessions: VoiceSessions) -> Iterator[Any]:
        """The session for one sentence: the wide one when no other sentence is being made, else
        a narrow one, so that sentences side by side share the cores rather than crowd them."""
        with self._running.sentence() as alone:
            if alone:
                yield sessions.wide
            else:
                with sessions.narrow() as narrow:
                    yield narrow

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

    def _voice(self, voice_id: str) -> VoiceSessions:
        with self._lock:
            if voice_id in self._loaded:
                self._loaded.move_to_end(voice_id)
                return self._loaded[voice_id]
            voice = load_sessions(self._catalog.get(voice_id), self._settings, self._device, self._cache_dir)
            voice.warm_in_background(WARM_NARROW)
            self._loaded[voice_id] = voice
            while len(self._loaded) > self._settings.max_loaded_voices:
                self._loaded.popitem(last=False)
            return voice


def _trim_pause(samples: np.ndarray[Any, Any], rate: int) -> np.ndarray[Any, Any]:
    """`samples` with the quiet at their end cut to `JOIN_PAUSE_MS`: the voice ends a phrase with
    ~150 ms of quiet, and the next chunk opens with ~30-45 ms more, where two words within a phrase
    have ~70 ms between them."""
    loud = np.flatnonzero(np.abs(samples) >= QUIET)
    if len(loud) == 0:
        return samples
    return samples[: min(len(samples), int(loud[-1]) + 1 + rate * JOIN_PAUSE_MS // 1000)]


def _word_timings(
    voice: Any, sentence: str, parts: list[Any], rate: int, offset: float, lexicon: Lexicon
) -> tuple[WordTiming, ...]:
    """Each written word of `sentence` with where it is spoken, from Piper's phoneme alignments."""
    if any(part.phoneme_alignments is None for part in parts):
        return ()
    cursor, spans = 0, []
    for part in parts:  # each part's spans, moved to where the part starts in the sentence
        phonemes = [(a.phoneme, int(a.num_samples)) for a in part.phoneme_alignments]
        spans += [(cursor + a, cursor + b) for a, b in spoken_spans(phonemes)]
        cursor += sum(samples for _, samples in phonemes)
    tokens = sentence.split()
    counts = [_spoken_count(voice, lexicon.apply(token)) for token in tokens]
    return place_words(tokens, spans, counts, rate, offset)


def _spoken_count(voice: Any, token: str) -> int:
    """How many words espeak speaks for one written word (0 for punctuation alone)."""
    return spoken_word_count("".join("".join(sentence) for sentence in voice.phonemize(token)))
