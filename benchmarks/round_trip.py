"""Every voice heard back: held-out sentences in each voice's language, spoken by every voice of
both engines and transcribed by Whisper with the language named (base, multilingual; tiny.en for
English, as `make run` routes them), scored the way the eval suite scores (Whisper's normalisation;
per character in Japanese and Chinese). Then, for Japanese and Chinese, the G2P that was not
chosen (espeak-ng's) on the same sentences, the measure the choice rests on.

    python benchmarks/round_trip.py [--voices af_heart,ef_dora]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from agent_tools.settings import Settings
from evals.metrics import Scorers
from speech_backend import (
    Audio,
    RecognitionOptions,
    SynthesisOptions,
    WhisperSettings,
    build_recognizer,
    build_synthesizer,
    resample,
    resolve_device,
)
from speech_backend.kokoro.g2p import G2P
from speech_backend.piper.espeak import phonemize

# Held out: none of these is in the tests or the eval scenarios.
SENTENCES = {
    "en": (
        "The doctor can see you on Tuesday morning at half past nine.",
        "Please remember to bring your passport and a printed copy of the ticket.",
        "Our team shipped the new version of the app last week.",
    ),
    "es": (
        "Mañana vamos a visitar a mis abuelos en el pueblo.",
        "La biblioteca cierra a las nueve de la noche durante el verano.",
        "Necesito comprar pan, leche y algunas frutas para la cena.",
    ),
    "fr": (
        "Nous allons visiter le musée samedi après-midi.",
        "La boulangerie ouvre tous les jours à sept heures.",
        "Il faut réserver une table pour quatre personnes ce soir.",
    ),
    "it": (
        "Domani andiamo al mare con tutta la famiglia.",
        "Il treno per Roma parte dal binario tre alle otto.",
        "Vorrei prenotare una camera per due notti.",
    ),
    "pt": (
        "Amanhã vamos visitar os meus avós no interior.",
        "A farmácia fica aberta até as dez da noite.",
        "Preciso comprar pão, leite e algumas frutas para o jantar.",
    ),
    "hi": (
        "कल सुबह हम बाज़ार जाएंगे।",
        "मेरी ट्रेन शाम सात बजे निकलेगी।",
        "कृपया दरवाज़ा बंद कर दीजिए।",
    ),
    "ja": (
        "明日の朝、家族と一緒に海へ行きます。",
        "図書館は夜九時に閉まります。",
        "駅の近くに新しいパン屋ができました。",
    ),
    "zh": (
        "明天早上我们和家人一起去海边。",
        "图书馆晚上九点关门。",
        "车站附近开了一家新的面包店。",
    ),
}
ESPEAK_FOR = {"ja": "ja", "zh": "cmn"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voices", help="comma-separated voice ids (default: every voice)")
    args = parser.parse_args()
    settings = Settings()
    cpu = resolve_device("cpu")
    synthesizer = build_synthesizer(settings.engines, cpu, "catalog")
    english = build_recognizer(settings.engines, cpu)
    base = settings.engines.model_copy(update={"whisper": WhisperSettings(model="base")})
    multilingual = build_recognizer(base, cpu)
    scorers = Scorers()
    chosen = set(args.voices.split(",")) if args.voices else None
    voices = [v for v in synthesizer.voices() if chosen is None or v.id in chosen]

    def heard(voice: str, text: str, language: str) -> str:
        chunks = list(synthesizer.synthesize(text, voice, SynthesisOptions(deterministic=True)))
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
        recognizer = english if language == "en" else multilingual
        return recognizer.transcribe(resample(audio, 16000), RecognitionOptions(language=language)).text

    by_language: dict[str, list[float]] = defaultdict(list)
    print(f"{'voice':<20} {'engine':<7} {'lang':<6} {'error':>6}  (WER; CER in ja, zh)")
    for voice in voices:
        language = voice.language.split("_")[0]
        texts = SENTENCES.get(language)
        if texts is None:
            continue
        turns = [(text, heard(voice.id, text, language), language) for text in texts]
        error = scorers.wer(turns)
        by_language[language].append(error)
        print(f"{voice.id:<20} {voice.engine:<7} {language:<6} {error:6.3f}", flush=True)
    print("mean per language (voices):")
    for language, errors in sorted(by_language.items()):
        print(f"  {language:<4} {statistics.mean(errors):.3f}  ({len(errors)}; worst {max(errors):.3f})")
    print("the G2P not chosen (espeak-ng), same sentences, first voice of each language:")
    kokoro: Any = synthesizer._engine_of(next(v.id for v in voices if v.engine == "kokoro"))  # type: ignore[attr-defined]
    for language, espeak_voice in ESPEAK_FOR.items():
        voice = next((v.id for v in voices if v.language == language), None)
        if voice is None:
            continue
        chosen_g2p = kokoro._g2ps.get(espeak_voice)
        kokoro._g2ps[espeak_voice] = G2P(lambda text, v=espeak_voice: phonemize(v, text), joiner="")
        turns = [(text, heard(voice, text, language), language) for text in SENTENCES[language]]
        print(f"  {language:<4} {voice:<14} espeak-ng {scorers.wer(turns):.3f}", flush=True)
        if chosen_g2p is not None:
            kokoro._g2ps[espeak_voice] = chosen_g2p


if __name__ == "__main__":
    main()
