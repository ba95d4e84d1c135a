"""Text -> Piper -> every codec -> decode -> Whisper -> text, over varied sentences."""

from __future__ import annotations

import pytest

from speech_backend import AudioLimits, RecognitionOptions, decode_audio, encode_audio
from tests.wer import normalized_wer

SENTENCES = [
    "Please call me back at five thirty this afternoon.",
    "The meeting has been moved to Thursday, the twelfth of March.",
    "How many people are coming to dinner tonight?",
    "Turn left at the second traffic light, then go straight for two miles.",
    "My flight leaves at nine in the morning from gate twenty one.",
    "Could you play some jazz music in the living room?",
    "The total comes to forty two dollars and fifty cents.",
    "Doctor Smith will see you in about fifteen minutes.",
    "Is it going to rain in London tomorrow?",
    "I would like to order a large pizza with mushrooms and olives.",
    "Set an alarm for six fifteen every weekday.",
    "The package was delivered to the wrong address on Elm Street.",
    "What time does the museum open on Sundays?",
    "Thank you for calling, your reservation is confirmed.",
    "She bought three apples, two oranges, and a bunch of bananas.",
    "Remind me to water the plants when I get home.",
    "The train to Boston is running about ten minutes late.",
    "Please spell your last name for me, letter by letter.",
    "We have one hundred and twenty seats left for the concert.",
    "Why did the computer restart in the middle of the night?",
    "Hello! My name is Alice, and I live in New York.",
    "The password must have at least eight characters.",
]


def test_round_trip_over_varied_sentences_has_low_word_error_rate(speak, recognizer):
    from speech_backend import resample

    hypotheses = [
        recognizer.transcribe(resample(speak(s), 16000), RecognitionOptions()).text for s in SENTENCES
    ]
    assert normalized_wer(SENTENCES, hypotheses) <= 0.10


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_round_trip_through_each_codec_keeps_the_words(speak, recognizer, fmt):
    text = "Every format should bring all of these spoken words back to the listener."
    data = encode_audio(speak(text), fmt)
    audio = decode_audio(data, AudioLimits(), target_rate=16000).audio
    assert normalized_wer([text], [recognizer.transcribe(audio, RecognitionOptions()).text]) <= 0.15
