"""The speech service: bounds before engine work, cancellation between sentences, real round trips."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from agent_tools.core.outputs import SpeechFrame, SpeechFrames
from agent_tools.core.service import SpeechService
from agent_tools.core.sources import AudioSource
from agent_tools.settings import ServiceSettings, Settings
from speech_backend import (
    AudioLimits,
    AudioTooLong,
    DecodeFailed,
    SpeechChunk,
    SynthesisOptions,
    TextTooLong,
    UnsupportedMedia,
    VoiceNotFound,
    decode_audio,
    is_marked_synthetic,
)
from speech_backend.fakes import FakeSynthesizer
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


class CountingSynthesizer(FakeSynthesizer):
    """The fake synthesizer, counting the sentences it was asked to speak."""

    def __init__(self) -> None:
        self.sentences = 0
        self.calls = 0

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        self.calls += 1
        for chunk in super().synthesize(text, voice_id, options):
            self.sentences += 1
            yield chunk


def fake_service(synthesizer: FakeSynthesizer, **settings: object) -> SpeechService:
    from tests.agent_tools.conftest import fake_runtime

    return fake_runtime(Settings(service=ServiceSettings(**settings)), synthesizer).service


async def test_speak_over_the_text_limit_is_text_too_long_without_running_the_engine():
    engine = CountingSynthesizer()
    with pytest.raises(TextTooLong, match="10"):
        await fake_service(engine, max_text_chars=10).speak("x" * 11)
    assert engine.calls == 0


async def test_speak_that_would_run_past_the_output_cap_stops_at_the_sentence_that_crosses_it():
    engine = CountingSynthesizer()
    with pytest.raises(AudioTooLong):
        await fake_service(engine, max_speech_seconds=3.0).speak("A short one. " * 20)
    assert engine.sentences < 20


async def test_cancelling_speak_stops_synthesis_between_sentences():
    engine = CountingSynthesizer()
    service = fake_service(engine)
    spoken = anyio.Event()

    async def on_progress(done: float, total: float | None, message: str) -> None:
        spoken.set()
        await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: service.speak("Sentence here. " * 200, progress=on_progress))
        with anyio.fail_after(5):
            await spoken.wait()
        tg.cancel_scope.cancel()
    assert 1 <= engine.sentences < 200


async def test_speak_returns_marked_audio_with_sentence_timings(service):
    speech = await service.speak("Hello there. General greetings.", fmt="flac", deterministic=True)
    assert speech.synthetic and speech.voice == "en_US-joe-medium" and speech.engine == "piper"
    assert [s.text for s in speech.sentences] == ["Hello there.", "General greetings."]
    decoded = decode_audio(speech.data, AudioLimits())
    assert is_marked_synthetic(decoded.metadata)
    assert decoded.audio.duration == pytest.approx(speech.duration, abs=0.01)
    assert speech.sentences[-1].end == pytest.approx(speech.duration, abs=0.01)


async def test_speak_then_transcribe_round_trips_the_words(service):
    text = "The quick brown fox jumps over the lazy dog."
    speech = await service.speak(text, fmt="mp3", deterministic=True)
    heard = await service.transcribe(AudioSource(data=speech.data), word_timestamps=True)
    assert normalized_wer([text], [heard.transcript.text]) <= 0.1
    assert heard.transcript.words


async def test_an_unknown_voice_is_voice_not_found(service):
    with pytest.raises(VoiceNotFound):
        await service.speak("Hello.", voice="../secrets")


@pytest.mark.parametrize(
    ("data", "error"), [(b"not audio" * 100, UnsupportedMedia), (b"RIFF\0\0", DecodeFailed)]
)
async def test_bad_audio_gets_its_typed_error_and_the_service_keeps_serving(service, data, error):
    with pytest.raises(error):
        await service.transcribe(AudioSource(data=data))
    speech = await service.speak("Still here.", deterministic=True)
    assert "here" in (await service.transcribe(AudioSource(data=speech.data))).transcript.text.lower()


async def test_voices_filter_by_language_prefix(service):
    assert [v.id for v in (await service.voices("en"))] == ["en_US-joe-medium"]
    assert [v.id for v in (await service.voices("en-us"))] == ["en_US-joe-medium"]
    assert (await service.voices("de")) == ()


async def test_a_new_stream_speaks_before_the_rest_of_a_whole_clip_already_speaking(settings):
    from tests.agent_tools.conftest import eventually
    from tests.agent_tools.web.test_http_routes import gated

    one_slot = settings.service.model_copy(update={"synthesis_slots": 1})  # calls must take turns
    runtime, engine = gated(settings.model_copy(update={"service": one_slot}))
    service = runtime.service
    heard: list[str] = []

    async def stream() -> None:
        plan = await runtime.streams.start("New one. New two.")
        async with runtime.streams.frames(plan, SpeechFrames(), "test") as receive:
            heard.extend([item.text async for item in receive if isinstance(item, SpeechFrame)])

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: service.speak("Old one. Old two. Old three. Old four."))
        engine.allowed.release()
        await eventually(lambda: engine.sentences == 1)  # the clip's second sentence now holds the slot
        tg.start_soon(stream)
        await eventually(lambda: runtime.scheduler.sentences.waiting == 1)
        for _ in range(6):
            engine.allowed.release()
    assert engine.spoken[:4] == ["Old one.", "Old two.", "New one.", "Old three."]
    assert heard == ["New one.", "New two."] and runtime.scheduler.synthesis.in_use == 0
