"""A voice's sessions: a wide one for a sentence made alone, narrow ones lent to sentences made
side by side, sharing the voice's weights."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from speech_backend import EngineSettings, SynthesisOptions, Synthesizer, build_synthesizer
from speech_backend.devices import Device
from speech_backend.piper.sessions import VoiceSessions
from speech_backend.running import RunningSentences
from tests.conftest import DEFAULT_VOICE


class Maker:
    """Makes stand-in sessions and keeps them."""

    def __init__(self) -> None:
        self.made: list[object] = []

    def __call__(self) -> object:
        self.made.append(object())
        return self.made[-1]


def test_a_lent_narrow_session_comes_back_for_the_next_sentence():
    make = Maker()
    made = make.made
    sessions = VoiceSessions(wide=object(), make_narrow=make)
    with sessions.narrow() as first, sessions.narrow() as second:  # first lent: a second is made
        assert second is not first
    assert len(made) == 2
    with sessions.narrow() as again:
        assert again in made
    assert len(made) == 2  # nothing more was made


def test_warm_makes_the_narrow_sessions_up_front_once():
    make = Maker()
    made = make.made
    sessions = VoiceSessions(wide=object(), make_narrow=make)
    sessions.warm(2)
    sessions.warm(2)
    assert len(made) == 2
    with sessions.narrow() as one, sessions.narrow() as two:
        assert {id(one), id(two)} == {id(m) for m in made}


def test_without_narrow_sessions_every_sentence_gets_the_wide_one():
    wide = object()
    sessions = VoiceSessions(wide=wide)
    sessions.warm(2)
    with sessions.narrow() as one, sessions.narrow() as two:
        assert one is wide and two is wide


def test_while_narrow_sessions_are_made_in_the_background_a_sentence_beside_another_shares_the_wide_one():
    release, made = threading.Event(), []

    def make() -> object:
        release.wait(10)
        made.append(object())
        return made[-1]

    wide = object()
    sessions = VoiceSessions(wide=wide, make_narrow=make)
    sessions.warm_in_background(2)
    with sessions.narrow() as meanwhile:
        assert meanwhile is wide  # no wait for a session being made
    release.set()
    deadline = time.monotonic() + 10
    while sessions.warming and time.monotonic() < deadline:
        time.sleep(0.01)
    with sessions.narrow() as one, sessions.narrow() as two:
        assert {id(one), id(two)} == {id(m) for m in made} and len(made) == 2


def test_the_bundled_voice_loads_narrow_sessions_beside_its_wide_one(synthesizer: Synthesizer):
    sessions: Any = synthesizer._voice(DEFAULT_VOICE)  # type: ignore[attr-defined]
    assert isinstance(sessions, VoiceSessions)
    assert sessions.make_narrow is not None and sessions.weights  # shared weights, on the CPU
    sessions.warm(1)  # (made in the background since the voice loaded; at least one is here now)
    with sessions.narrow() as narrow:
        assert narrow.session is not sessions.wide.session


def test_sentences_made_side_by_side_sound_as_when_made_alone(synthesizer: Synthesizer):
    text = "Two calls speak at the same moment. Each one hears its own words."
    options = SynthesisOptions(deterministic=True)
    alone = np.concatenate([c.audio.samples for c in synthesizer.synthesize(text, DEFAULT_VOICE, options)])
    side_by_side: list[np.ndarray[Any, Any]] = []
    start = threading.Barrier(3)

    def speak() -> None:
        start.wait()
        chunks = synthesizer.synthesize(text, DEFAULT_VOICE, options)
        side_by_side.append(np.concatenate([c.audio.samples for c in chunks]))

    threads = [threading.Thread(target=speak) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(side_by_side) == 3
    for audio in side_by_side:  # fewer threads may sum in another order: equal within rounding
        assert audio.shape == alone.shape
        assert np.allclose(audio, alone, atol=1e-3)


def spinning(voice: Any) -> str:
    """The session's `allow_spinning` entry ("" when it was left at onnxruntime's default: spin)."""
    options = voice.session.get_session_options()
    try:
        return str(options.get_session_config_entry("session.intra_op.allow_spinning"))
    except RuntimeError:  # no such entry
        return ""


def test_idle_synthesis_threads_sleep_unless_spinning_is_asked_for(
    synthesizer: Synthesizer, engine_settings: EngineSettings, cpu: Device
):
    sessions: Any = synthesizer._voice(DEFAULT_VOICE)  # type: ignore[attr-defined]
    with sessions.narrow() as narrow:
        assert spinning(sessions.wide) == "0" and spinning(narrow) == "0"
    piper = engine_settings.piper.model_copy(update={"spin_wait": True})
    spinner = build_synthesizer(engine_settings.model_copy(update={"piper": piper}), cpu)
    spinner.load(DEFAULT_VOICE)
    sessions = spinner._voice(DEFAULT_VOICE)  # type: ignore[attr-defined]
    with sessions.narrow() as narrow:
        assert spinning(sessions.wide) != "0" and spinning(narrow) != "0"


def test_a_sentence_of_another_engine_sends_piper_to_a_narrow_session(engine_settings, cpu):
    running = RunningSentences()
    piper: Any = build_synthesizer(engine_settings, cpu, "piper", running=running)
    piper.load(DEFAULT_VOICE)
    sessions = piper._loaded[DEFAULT_VOICE]
    deadline = time.monotonic() + 60
    while sessions.warming and time.monotonic() < deadline:  # its narrow sessions, made in the background
        time.sleep(0.05)
    with piper._session(sessions) as alone:
        assert alone is sessions.wide
    with running.sentence(), piper._session(sessions) as beside:  # a Kokoro sentence being made
        assert beside is not sessions.wide
