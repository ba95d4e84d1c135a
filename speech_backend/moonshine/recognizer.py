"""Moonshine tiny-en (MIT, Useful Sensors) on onnxruntime: English speech recognition whose encoder
is sized to the audio rather than to Whisper's 30-second window, so a 3-second utterance costs tens
of milliseconds on one CPU thread (Whisper tiny.en: about 600 ms beside other work). It has no word
timings and no prompt, so it serves only the live utterances that ask for neither
(`MoonshineRecognizer.accepts`); the rest stay with Whisper.

The three files ship inside the `moonshine-voice==0.1.0` wheel; set-up takes them out of it
(`python -m speech_backend.moonshine.recognizer --cache DIR`, which `make` runs), each checked
against its pinned sha256 when loaded. moonshine-voice is not a run-time dependency.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from speech_backend.errors import InvalidArgument, ModelNotFound
from speech_backend.moonshine.word_confidence import ALTERNATIVES, Step, last_word_probability
from speech_backend.protocols import RECOGNITION_RATE, ProgressHook, RecognitionOptions
from speech_backend.results import Audio, HeardEnd, Samples, Segment, Transcript
from speech_backend.wheel_files import WheelFile, main

_WHEEL = "moonshine-voice==0.1.0"
_ASSETS = "moonshine_voice/assets/tiny-en"
ENCODER = WheelFile(
    _WHEEL,
    f"{_ASSETS}/encoder_model.ort",
    "moonshine-tiny-en-encoder.ort",
    "94e90a4654fc45cdfedb77c4c08e1739f48862998e58fada384b25118134f221",
)
DECODER = WheelFile(
    _WHEEL,
    f"{_ASSETS}/decoder_model_merged.ort",
    "moonshine-tiny-en-decoder.ort",
    "cf524c4862d36e9e5ab032eddc73637efd822d70e868ac575cf1a46e1e4708a0",
)
TOKENIZER = WheelFile(
    _WHEEL,
    f"{_ASSETS}/tokenizer.bin",
    "moonshine-tiny-en-tokenizer.bin",
    "6884b35fd6377d4c4d32336a0bc152f36b64d1e45b6503683cdc238250a8472d",
)
FILES = {"Moonshine tiny-en encoder": ENCODER, "decoder": DECODER, "tokenizer": TOKENIZER}

SAMPLE_RATE = RECOGNITION_RATE
MIN_SECONDS = 0.1  # the encoder's convolutions need this much audio
MAX_SECONDS = 9.0  # the exported decoder attends to at most 384 encoder frames (9.25 s); longer: Whisper
TOKENS_PER_SECOND = 6.5  # a bound on the decoding steps: speech is at most ~4 tokens a second
_START, _END = 1, 2
_SPACE = "\u2581"
# Its training text is partly nineteenth-century books: "to-day", "to-morrow", "to-night" as spelt then.
_OLD_SPELLINGS = re.compile(r"\b([Tt])o-(day|morrow|night)\b")


class MoonshineRecognizer:
    """English recognition of short utterances; thread-safe (runs may overlap, each on one thread)."""

    engine = "moonshine"
    model_id = "moonshine-tiny-en"
    multilingual = False
    languages = ("en",)

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._model: _Model | None = None
        self._lock = threading.Lock()

    @staticmethod
    def fetched(cache_dir: Path) -> bool:
        """Whether set-up put the model's files in `cache_dir`."""
        return all(f.path(cache_dir) is not None for f in FILES.values())

    def load(self) -> None:
        """Check and load the model now rather than on the first utterance.

        Raises:
            ModelNotFound: a file is missing or not the pinned one.
        """
        self._loaded()

    @staticmethod
    def accepts(seconds: float, options: RecognitionOptions) -> bool:
        """Whether it serves this utterance: English (or no language given), no word timings, no
        prompt, between 0.1 and 9 seconds long."""
        return (
            options.language in (None, "en")
            and not options.word_timestamps
            and not options.initial_prompt
            and MIN_SECONDS <= seconds <= MAX_SECONDS
        )

    def check_options(self, options: RecognitionOptions) -> None:
        """Refuse options the model cannot serve.

        Raises:
            InvalidArgument: a language other than English, word timings or a prompt.
        """
        if options.language not in (None, "en"):
            raise InvalidArgument(f"{self.model_id} recognises English only, not {options.language!r}")
        if options.word_timestamps or options.initial_prompt:
            raise InvalidArgument(f"{self.model_id} gives no word timings and takes no prompt")

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Recognise all of `audio` (16 kHz mono, 0.1-9 s); `progress` is called after the encoder
        and may raise to stop.

        Raises:
            InvalidArgument: options it cannot serve, or audio of another rate or length.
        """
        self.check_options(options)
        duration = audio.duration
        if audio.sample_rate != SAMPLE_RATE:
            raise InvalidArgument(f"recognition needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz")
        if not MIN_SECONDS <= duration <= MAX_SECONDS:
            raise InvalidArgument(
                f"{self.model_id} takes {MIN_SECONDS}-{MAX_SECONDS:.0f} s of audio, got {duration:.2f} s"
            )
        decoded = self._loaded().recognise(np.asarray(audio.samples, dtype=np.float32), progress)
        text = decoded.text
        # no probability of silence: the model is only given audio its VAD heard as speech
        segment = Segment(0.0, duration, text, avg_logprob=decoded.avg_logprob, no_speech_prob=0.0)
        segments = (segment,) if text else ()
        return Transcript(
            text=text, language="en", language_probability=1.0, duration=duration, segments=segments
        )

    def last_words(self, samples: Samples) -> HeardEnd:
        """The words of the last 9 s of `samples` (16 kHz), with the last word's probability: what a
        turn's end is judged by (its start is not needed); none for less than 0.1 s."""
        tail = np.asarray(samples[-int(MAX_SECONDS * SAMPLE_RATE) :], dtype=np.float32)
        if len(tail) < MIN_SECONDS * SAMPLE_RATE:
            return HeardEnd("")
        decoded = self._loaded().recognise(tail, None)
        return HeardEnd(decoded.text, decoded.last_word_probability)

    def _loaded(self) -> _Model:
        with self._lock:
            if self._model is None:
                self._model = _Model(self._cache_dir)
            return self._model


class _Model:
    def __init__(self, cache_dir: Path) -> None:
        import onnxruntime

        paths = {}
        for label, file in FILES.items():
            path = file.path(cache_dir)
            if path is None:
                raise ModelNotFound(f"{label} is not in {cache_dir}; run `make` (set-up fetches it)")
            file.check(path)
            paths[label] = path
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3

        def session(path: Path) -> Any:
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        self._encoder = session(paths["Moonshine tiny-en encoder"])
        self._decoder = session(paths["decoder"])
        self._outputs = [o.name for o in self._decoder.get_outputs()]
        self._past = {
            i.name: (i.shape[1], i.shape[3])
            for i in self._decoder.get_inputs()
            if i.name.startswith("past_key_values.")
        }
        self._pieces = _pieces(paths["tokenizer"].read_bytes())

    def recognise(self, samples: np.ndarray, progress: ProgressHook | None) -> _Decoded:
        """The text of `samples` by greedy decoding, with its mean log-probability per token and the
        probability of its last word."""
        duration = len(samples) / SAMPLE_RATE
        batch = samples[None, :]
        (hidden,) = self._encoder.run(
            None, {"input_values": batch, "attention_mask": np.ones(batch.shape, np.int64)}
        )
        if progress is not None:
            progress(0.0, duration)
        mask = np.ones((1, hidden.shape[1]), np.int64)
        past = {name: np.zeros((1, heads, 0, size), np.float32) for name, (heads, size) in self._past.items()}
        tokens, logprobs, steps = [_START], [], []
        for step in range(int(duration * TOKENS_PER_SECOND) + 8):
            feed = {
                "input_ids": np.array([[tokens[-1]]], np.int64),
                "encoder_hidden_states": hidden,
                "encoder_attention_mask": mask,
                "use_cache_branch": np.array([step > 0]),
                **past,
            }
            outputs = dict(zip(self._outputs, self._decoder.run(None, feed), strict=True))
            for name in past:  # the encoder's keys and values are made once, at the first step
                if step == 0 or ".decoder." in name:
                    past[name] = outputs[name.replace("past_key_values.", "present.")]
            logits = outputs["logits"][0, -1].astype(np.float64)
            logp = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            token = int(np.argmax(logp))
            logprobs.append(float(logp[token]))
            if token == _END:
                break
            tokens.append(token)
            likeliest = np.argpartition(-logp, ALTERNATIVES)[:ALTERNATIVES]
            steps.append(
                Step(self._piece(token), tuple((self._piece(t), float(np.exp(logp[t]))) for t in likeliest))
            )
        if progress is not None:
            progress(duration, duration)
        text = b"".join(step.chosen for step in steps).decode("utf-8", "replace").replace(_SPACE, " ").strip()
        text = _OLD_SPELLINGS.sub(r"\1o\2", text)
        mean = float(np.mean(logprobs)) if logprobs else 0.0
        return _Decoded(text, mean, last_word_probability(steps))

    def _piece(self, token: int) -> bytes:
        return self._pieces[token] if token < len(self._pieces) else b""


class _Decoded(NamedTuple):
    text: str
    avg_logprob: float
    last_word_probability: float


def _pieces(data: bytes) -> list[bytes]:
    """The tokenizer's pieces, in id order: each a length byte then that many bytes."""
    pieces, at = [], 0
    while at < len(data):
        size = data[at]
        pieces.append(data[at + 1 : at + 1 + size])
        at += 1 + size
    return pieces


if __name__ == "__main__":
    sys.exit(main(FILES))
