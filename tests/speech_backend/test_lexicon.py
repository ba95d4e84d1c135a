"""The pronunciation lexicon: its matching rules, its refusals, and what Whisper hears with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech_backend import (
    Audio,
    EngineSettings,
    RecognitionOptions,
    SynthesisOptions,
    build_synthesizer,
    resample,
)
from speech_backend.devices import Device
from speech_backend.lexicon import Lexicon, LexiconError
from tests.conftest import DEFAULT_VOICE


def lexicon(tmp_path: Path, text: str) -> Lexicon:
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    return Lexicon(path)


def test_words_match_whole_and_in_any_case_acronyms_as_written_and_longer_keys_first(tmp_path):
    entries = lexicon(
        tmp_path,
        "kubectl: cube control\nSQL: sequel\nnginx: /ˈɛndʒɪnˈɛks/\nhome assistant: home helper\n"
        "home: house\n",
    )
    said = entries.apply("Kubectl, KUBECTL and kubectls; SQL but sql; nginx at Home Assistant, then home.")
    assert said == (
        "cube control, cube control and kubectls; sequel but sql; [[ ˈɛndʒɪnˈɛks ]] at home helper, "
        "then house."
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("ok: fine\nbroken: /half ipa\n", 2, "between two slashes"),
        ("ok: fine\n'': nothing\n", 2, "both text"),
        ('ok: fine\nbad: "[[ raw ]]"\n', 2, "without brackets"),
        ("- a list\n", None, "must map words"),
        ("key: [1, 2]\n", 1, "both text"),
    ],
)
def test_a_bad_entry_refuses_the_file_and_names_its_line(tmp_path, text, line, words):
    with pytest.raises(LexiconError) as refused:
        lexicon(tmp_path, text)
    assert words in str(refused.value) and (line is None or f"line {line}" in str(refused.value))


def test_a_reload_with_a_bad_entry_keeps_the_entries_in_force(tmp_path):
    entries = lexicon(tmp_path, "kubectl: cube control\n")
    (tmp_path / "lexicon.yaml").write_text("kubectl: /oops\n", encoding="utf-8")
    with pytest.raises(LexiconError):
        entries.reload()
    assert entries.apply("kubectl") == "cube control"


@pytest.mark.parametrize("voice", [DEFAULT_VOICE, "am_michael"])
def test_an_entry_changes_what_whisper_hears_on_both_engines(
    engine_settings: EngineSettings, cpu: Device, recognizer, tmp_path, voice
):
    text = "Now run kubectl to list the pods."

    def hear(entries: Lexicon) -> tuple[str, list[str]]:
        engine = build_synthesizer(engine_settings, cpu, "catalog", entries)
        chunks = list(engine.synthesize(text, voice, SynthesisOptions(deterministic=True)))
        audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
        heard = recognizer.transcribe(resample(audio, 16000), RecognitionOptions(language="en"))
        return heard.text.lower(), [w.text for c in chunks for w in c.words]

    with_entry, words = hear(lexicon(tmp_path, "kubectl: cube control\n"))
    without, _ = hear(Lexicon())
    assert "cube control" in with_entry and "cube control" not in without, (with_entry, without)
    assert words == text.split()  # the written words, timed
