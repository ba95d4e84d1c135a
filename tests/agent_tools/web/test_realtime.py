"""`/v1/realtime?intent=transcription` driven by the `openai` client's realtime connection: OpenAI's
transcription-session protocol over the live-transcription core."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import anyio
import pytest
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeTranscriptionSessionCreateRequestParam
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_tools.core.admission import Priority
from policies import token_hash
from speech_backend import Audio, resample
from tests.agent_tools.conftest import UTTERANCES, runtime_with, serve_http
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
RATE = 24000


def pcm24(audio: Audio) -> bytes:
    return (resample(audio, RATE).samples * 32767).astype("<i2").tobytes()


def session(audio_input: dict[str, Any]) -> RealtimeTranscriptionSessionCreateRequestParam:
    """A transcription session's `session.update` body with these `audio.input` fields."""
    body = {"type": "transcription", "audio": {"input": audio_input}}
    return cast(RealtimeTranscriptionSessionCreateRequestParam, body)


def pcm16(audio: Audio) -> bytes:
    return (resample(audio, 16000).samples * 32767).astype("<i2").tobytes()


@asynccontextmanager
async def realtime(base: str, api_key: str = "unused") -> AsyncIterator[AsyncRealtimeConnection]:
    async with (
        AsyncOpenAI(base_url=f"{base}/v1", api_key=api_key) as client,
        client.realtime.connect(extra_query={"intent": "transcription"}) as conn,
    ):
        yield conn


async def next_event(conn: AsyncRealtimeConnection) -> dict[str, Any]:
    with anyio.fail_after(60):
        event: dict[str, Any] = json.loads(await conn.recv_bytes())
    return event


async def events_until(conn: AsyncRealtimeConnection, kind: str, count: int = 1) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while sum(e["type"] == kind for e in events) < count:
        events.append(await next_event(conn))
    return events


async def append(conn: AsyncRealtimeConnection, pcm: bytes, chunk: int = 4800) -> None:
    for start in range(0, len(pcm), chunk):  # 100 ms per append
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + chunk]).decode())


async def test_server_vad_session_transcribes_each_utterance_with_openai_events(runtime, conversation):
    audio, spans = conversation
    async with serve_http(runtime) as base, realtime(base) as conn:
        created = await next_event(conn)
        await conn.session.update(
            session=session(
                {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            )
        )
        updated = await next_event(conn)
        await append(conn, pcm24(audio))
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed", 3)
    assert created["type"] == "session.created" and created["session"]["type"] == "transcription"
    detection = created["session"]["audio"]["input"]["turn_detection"]
    assert detection["type"] == "server_vad"  # OpenAI's default
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    items = [e["item_id"] for e in completed]
    assert len(set(items)) == 3
    previous = None
    for item, text, done, (start, end) in zip(items, UTTERANCES, completed, spans, strict=True):
        mine = [e for e in events if e.get("item_id") == item]
        kinds = [e["type"] for e in mine]
        assert kinds[:3] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
        ]
        assert kinds[-1] == "conversation.item.input_audio_transcription.completed"
        assert set(kinds[3:-1]) <= {"conversation.item.input_audio_transcription.delta"}
        assert mine[0]["audio_start_ms"] <= start * 1000 + 100 and mine[1]["audio_end_ms"] >= end * 1000 - 100
        assert mine[2]["previous_item_id"] == previous
        previous = item
        deltas = "".join(e["delta"] for e in mine if e["type"].endswith(".delta"))
        assert deltas == done["transcript"]  # the deltas join to the transcript
        assert normalized_wer([text], [done["transcript"]]) <= 0.15, done["transcript"]
        assert done["usage"]["type"] == "duration" and done["usage"]["seconds"] > 1


async def test_manual_turns_end_where_the_client_commits(runtime, speak):
    said = "Please book a table for four people at seven."
    pcm = pcm24(speak(said))
    async with serve_http(runtime) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        assert (await next_event(conn))["session"]["audio"]["input"]["turn_detection"] is None
        half = len(pcm) // 4 * 2
        await append(conn, pcm[:half])
        await append(conn, pcm[half:])
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in kinds  # no server VAD
    assert kinds[0] == "input_audio_buffer.committed"
    assert normalized_wer([said], [events[-1]["transcript"]]) <= 0.15
    assert events[-1]["usage"]["seconds"] == pytest.approx(len(pcm) / 2 / RATE, abs=0.05)


async def test_clear_drops_the_open_turn_and_bad_events_get_errors_while_the_session_goes_on(runtime, speak):
    said = "Turn the volume down a little bit."
    pcm = pcm24(speak(said))
    async with serve_http(runtime) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        await next_event(conn)
        await conn.input_audio_buffer.commit(event_id="evt_empty")  # nothing appended yet
        empty = await next_event(conn)
        await conn.send({"type": "response.create"})
        unserved = await next_event(conn)
        await conn.send({"type": "input_audio_buffer.append", "audio": "not base64!"})
        bad_audio = await next_event(conn)
        await conn.session.update(session=session({"format": {"type": "audio/pcm", "rate": 100}}))
        bad_rate = await next_event(conn)
        await append(conn, pcm)
        await conn.input_audio_buffer.clear()
        cleared = await next_event(conn)
        await conn.input_audio_buffer.commit()  # the cleared audio is gone
        gone = await next_event(conn)
        await conn.session.update(session=session({"transcription": {"language": "de"}}))
        german = await next_event(conn)
        await conn.session.update(session=session({"format": {"type": "audio/pcm", "rate": 16000}}))
        assert (await next_event(conn))["session"]["audio"]["input"]["format"]["rate"] == 16000
        await append(conn, pcm16(speak(said)), chunk=3200)  # the new rate from here on
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    for error, words in (
        (empty, "nothing to commit"),
        (unserved, "response.create"),
        (bad_audio, "base64"),
        (bad_rate, "rate"),
        (gone, "nothing to commit"),
        (german, "English"),
    ):
        assert error["type"] == "error", error
        empty_commit = error in (empty, gone)  # OpenAI's own code for it
        code = "input_audio_buffer_commit_empty" if empty_commit else "invalid_argument"
        assert error["error"]["code"] == code and error["error"]["type"] == "invalid_request_error"
        assert words in error["error"]["message"]
    assert empty["error"]["event_id"] == "evt_empty"
    assert cleared["type"] == "input_audio_buffer.cleared"
    assert normalized_wer([said], [events[-1]["transcript"]]) <= 0.15  # the session went on


async def test_refusals_close_with_the_socket_codes(runtime, settings, tmp_path):
    async with serve_http(runtime) as base:
        url = base.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
        async with connect(url) as ws:
            error = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4400 and "intent=transcription" in error["error"]["message"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: app\nprincipals:\n  - id: app\n"
        f"    token_sha256: [{token_hash('secret-token')}]\n"
        "    tools: [transcribe]\n    max_audio_seconds: 2\n"
    )
    guarded = runtime_with(runtime.service, settings.model_copy(update={"policy_file": policy}))
    async with serve_http(guarded) as base:
        async with realtime(base, api_key="wrong") as conn:
            refused = await next_event(conn)
        assert refused["error"]["code"] == "unauthorized"
        async with realtime(base, api_key="secret-token") as conn:
            assert (await next_event(conn))["type"] == "session.created"
            await append(conn, b"\0\0" * RATE * 3)  # over the caller's 2 s cap
            capped = await next_event(conn)
        assert capped["error"]["code"] == "audio_too_long"


async def test_an_update_mid_turn_keeps_the_audio_of_the_open_turn(runtime, speak):
    # a client may send audio before its session.update lands (Pipecat sends both as soon as it can)
    said = "Please book a table for four people at seven."
    pcm = pcm24(speak(said))
    half = len(pcm) // 4 * 2
    async with serve_http(runtime) as base, realtime(base) as conn:
        await next_event(conn)
        await append(conn, pcm[:half])  # under server VAD: the turn starts
        started = await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        await append(conn, pcm[half:])
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    assert started["type"] == "input_audio_buffer.speech_started"
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.updated" and "input_audio_buffer.speech_started" not in kinds
    done = events[-1]
    assert done["item_id"] == started["item_id"]  # one turn, both halves
    assert normalized_wer([said], [done["transcript"]]) <= 0.15, done["transcript"]


# Nothing owed is dropped: a committed turn's transcript arrives however long it takes, the turns
# before a refusal are transcribed before it, and a turn that cannot be served says so at once.


async def test_a_session_waiting_for_a_committed_turns_transcript_is_not_closed_as_idle(
    runtime, settings, speak
):
    said = " ".join(UTTERANCES * 4)
    pcm = pcm24(speak(said))
    assert len(pcm) / 2 / RATE >= 20  # far longer to decode than the socket timeout below
    patient = runtime_with(runtime.service, settings, socket_timeout_seconds=1.0)
    async with serve_http(patient) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        await next_event(conn)
        await append(conn, pcm, chunk=48000)
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
        with pytest.raises(ConnectionClosed):  # with nothing owed, the silent client is closed
            await events_until(conn, "never")
    assert normalized_wer([said], [events[-1]["transcript"]]) <= 0.15
    assert conn._connection.close_code == 4504


async def test_a_session_ended_by_the_callers_audio_cap_first_gets_the_turns_heard_within_it(
    runtime, settings, speak, tmp_path
):
    said = "Please book a table for four people at seven."
    pcm = pcm24(speak(said))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: app\nprincipals:\n  - id: app\n"
        f"    token_sha256: [{token_hash('secret-token')}]\n"
        f"    tools: [transcribe]\n    max_audio_seconds: {len(pcm) / 2 / RATE + 1:.1f}\n"
    )
    capped = runtime_with(runtime.service, settings.model_copy(update={"policy_file": policy}))
    async with serve_http(capped) as base, realtime(base, api_key="secret-token") as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        await next_event(conn)
        await append(conn, pcm)
        await conn.input_audio_buffer.commit()
        await append(conn, b"\0\0" * RATE * 3)  # at once: the cap is reached while the turn decodes
        events = await events_until(conn, "error")
        with pytest.raises(ConnectionClosed):
            await next_event(conn)
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    assert completed and normalized_wer([said], [completed[0]["transcript"]]) <= 0.15
    assert events[-1]["error"]["code"] == "audio_too_long"
    assert conn._connection.close_code == 4400


async def test_a_turn_without_a_recognition_slot_in_time_fails_busy_and_the_session_goes_on(
    runtime, settings, speak
):
    said = "Turn the volume down a little bit."
    pcm = pcm24(speak(said))
    hurried = runtime_with(runtime.service, settings, live_final_wait_seconds=0.2)
    scheduler = hurried.scheduler
    async with serve_http(hurried) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        await next_event(conn)
        async with AsyncExitStack() as held:
            for admission in (scheduler.recognition, scheduler.short_recognition):  # both recognizers full
                for _ in range(admission.slots):
                    await held.enter_async_context(admission.slot(Priority.LIVE_FINAL))
            await append(conn, pcm)
            await conn.input_audio_buffer.commit()
            refused = await events_until(conn, "conversation.item.input_audio_transcription.failed")
        await append(conn, pcm)
        await conn.input_audio_buffer.commit()
        served = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    committed = next(e for e in refused if e["type"] == "input_audio_buffer.committed")
    failed = refused[-1]
    assert failed["item_id"] == committed["item_id"]
    assert failed["error"]["code"] == "busy" and failed["error"]["retryable"] is True
    assert failed["error"]["retry_after_ms"] > 0
    assert normalized_wer([said], [served[-1]["transcript"]]) <= 0.15


async def test_an_event_nested_too_deeply_is_an_invalid_argument_and_the_session_goes_on(runtime):
    async with serve_http(runtime) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.send_raw("[" * 200_000)
        refused = await next_event(conn)
        await conn.session.update(session=session({"turn_detection": None}))
        updated = await next_event(conn)
    assert refused["type"] == "error" and refused["error"]["code"] == "invalid_argument"
    assert "nests JSON too deeply" in refused["error"]["message"]
    assert updated["type"] == "session.updated"
