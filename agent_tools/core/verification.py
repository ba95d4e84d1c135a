"""`speak` with `verify`: the speech just made, heard back by the recognizer in the voice's language
and scored against the text, so an agent can check that a name or a number was said as written
before it plays it to a caller. It is one more recognition, under the same policy, admission and
quotas as a `transcribe` call."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

from agent_tools.core.outputs import Speech
from agent_tools.core.service import SpeechService
from agent_tools.core.sources import AudioSource
from policies import Principal
from speech_backend import Audio, encode_audio


@dataclass(frozen=True)
class Verification:
    """What the recognizer heard in the speech, and its word error rate against the text."""

    transcript: str
    wer: float


async def verify_speech(
    service: SpeechService, speech: Speech, text: str, principal: Principal | None = None
) -> Verification:
    """Hear `speech` back in its voice's language and score it against `text`.

    Raises:
        The errors of a `transcribe` call (busy, rate_limited, ...).
    """
    language = service.require().voice(speech.voice).language.split("_")[0]
    data = speech.data
    if speech.format == "pcm":  # no container: give the recognizer a WAV of the same samples
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        data = encode_audio(Audio(samples, speech.sample_rate), "wav")
    heard = await service.transcribe(AudioSource(data=data), language=language, principal=principal)
    return Verification(heard.transcript.text, word_error_rate(text, heard.transcript.text, language))


# Written without spaces between words: their error is counted per character.
UNSPACED_LANGUAGES = frozenset(("ja", "zh", "th", "lo", "my", "km"))


def word_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """Word error rate after Whisper's normalisation (its English one for English); in languages
    written without spaces, the character error rate."""
    if language == "en":
        normalize = EnglishTextNormalizer()
    else:
        normalize = BasicTextNormalizer(split_letters=language in UNSPACED_LANGUAGES)
    ref, hyp = " ".join(str(normalize(reference)).split()), " ".join(str(normalize(hypothesis)).split())
    if not ref:
        return 0.0 if not hyp else 1.0
    return round(float(jiwer.wer(ref, hyp)), 4)
