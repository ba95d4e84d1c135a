"""The core without any transport: the error table, live transcription, voice activity under
admission, and redaction in one place."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import policies.errors
import speech_backend.errors
from agent_tools.core import errors as core_errors
from agent_tools.core.live import open_live
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.core.sources import AudioSource
from agent_tools.settings import Settings
from policies import Policy, PolicyConfig
from speech_backend import BackendUnavailable, resample
from speech_errors import ContractError
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
SENTENCE = "The parcel arrives on Thursday before noon."
PHRASE = "My number is five five five, one two three, four five six seven."


def _contract_errors() -> Iterator[type[ContractError]]:
    for module in (speech_backend.errors, policies.errors, core_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ContractError):
                yield value


def test_every_error_code_is_in_the_one_table_with_its_close_code():
    codes = {cls.code for cls in _contract_errors()}
    assert codes <= set(core_errors.ERROR_CODES), codes - set(core_errors.ERROR_CODES)
    for code, kind in core_errors.ERROR_CODES.items():
        assert kind.close_code == 4000 + kind.http_status, code
    assert core_errors.http_status("a_code_from_the_future") == 500  # unknown codes never raise


def test_an_error_object_carries_the_fields_its_constructor_was_given():
    body = core_errors.error_body(
        policies.errors.RateLimited("slow down", 1500, rule="calls_per_minute"), "r1"
    )
    assert body == {
        "code": "rate_limited",
        "message": "slow down",
        "retryable": True,
        "request_id": "r1",
        "retry_after_ms": 1500,
        "rule": "calls_per_minute",
    }


def pcm_of(service: SpeechService, audio) -> bytes:
    silence = np.zeros(16000, dtype=np.float32)
    samples = np.concatenate([silence, resample(audio, 16000).samples, silence])
    return (samples * 32767).astype("<i2").tobytes()


async def transcribe_live(service: SpeechService, pcm: bytes, principal=None) -> list[dict[str, Any]]:
    """Feed `pcm` to a socket-free live transcription in 100 ms frames; the events it emitted."""
    events: list[dict[str, Any]] = []
    frames = iter([pcm[i : i + 3200] for i in range(0, len(pcm), 3200)])

    async def receive() -> bytes | None:
        return next(frames, None)

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    live = await open_live(service, LiveSettings(partial_interval_ms=0), principal, emit)
    await live.run(receive)
    return events


async def test_a_live_transcription_runs_without_any_socket(service, speak):
    events = await transcribe_live(service, pcm_of(service, speak(SENTENCE)))
    finals = [e for e in events if e["type"] == "final"]
    assert [e["type"] for e in events][-1] == "done" and len(finals) == 1
    assert normalized_wer([SENTENCE], [str(finals[0]["text"])]) <= 0.2
    assert service.scheduler.in_flight == 0 and service.scheduler.voice_activity.in_use == 0


async def test_live_transcription_is_redacted_where_batch_transcription_is(engines, engine_settings, speak):
    config = PolicyConfig.model_validate(
        {"version": 1, "principals": [{"id": "local", "redact_pii": True}], "local_principal": "local"}
    )
    settings = Settings(engines=engine_settings)
    service = Runtime.build(settings, engines, policy=Policy(config)).service
    audio = speak(PHRASE)
    live = [e for e in await transcribe_live(service, pcm_of(service, audio)) if e["type"] == "final"]
    from speech_backend import encode_audio

    heard = await service.transcribe(AudioSource(data=encode_audio(audio, "wav")), word_timestamps=True)
    batch = heard.transcript
    assert live[0]["text"] == batch.text == "My number is [phone]"
    assert not any(ch.isdigit() for w in live[0]["words"] for ch in w["word"])
    assert not any(ch.isdigit() for w in batch.words for ch in w.text)


async def test_a_live_stream_opened_during_a_shutdown_answers_busy(service, speak):
    pcm = pcm_of(service, speak("Hello there."))
    service.scheduler.shutdown()
    with pytest.raises(core_errors.Busy):
        await transcribe_live(service, pcm)
    assert service.scheduler.in_flight == 0 and service.scheduler.live_streams == 0


async def test_live_transcription_without_a_vad_model_is_backend_unavailable(engines, engine_settings):
    settings = Settings(engines=engine_settings)
    service = Runtime.build(settings, dataclasses.replace(engines, vad=None), policy=Policy()).service
    with pytest.raises(BackendUnavailable):
        await transcribe_live(service, b"\0\0" * 1600)


def test_the_runtime_is_built_once_and_cannot_be_rewired(engines, engine_settings):
    runtime = Runtime.build(Settings(engines=engine_settings), engines)
    with pytest.raises(dataclasses.FrozenInstanceError):
        runtime.policy = Policy()  # type: ignore[misc]
    assert runtime.service.policy is runtime.policy and runtime.service.metrics is runtime.metrics
    assert runtime.streams.service is runtime.service


async def test_a_live_final_counts_its_audio_as_heard(service, speak):
    pcm = pcm_of(service, speak("Hello there."))
    await transcribe_live(service, pcm)
    assert b'speech_audio_seconds_total{direction="in"} 0.0' not in service.metrics.render()
    assert b'speech_audio_seconds_total{direction="in"}' in service.metrics.render()
