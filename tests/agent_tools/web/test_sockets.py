"""The WebSocket routes: speech from text fed in pieces (with barge-in) and live transcription."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_tools.core.sources import AudioSource
from policies import token_hash
from speech_backend import Audio, AudioLimits, decode_audio, resample
from tests.agent_tools.conftest import UTTERANCES, eventually, runtime_with, serve_http
from tests.agent_tools.web.test_http_routes import gated
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def receive(ws: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(60):
        event: dict[str, Any] = json.loads(await ws.recv())
    return event


async def until_done(ws: ClientConnection) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await receive(ws))
        if events[-1]["type"] == "done":
            return events


async def closed_with(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error event the server sent, and its close code."""
    error = await receive(ws)
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code is not None
    return error, ws.close_code


def pcm_of(events: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(e["pcm16"]) for e in events if e["type"] == "audio")


async def test_text_fed_in_pieces_is_spoken_sentence_by_sentence(runtime, service):
    text = "Your order shipped this morning. It should arrive on Thursday before noon. Anything else"
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws?sample_rate=16000")) as ws:
        ready = await receive(ws)
        for token in text.split(" "):  # the way an LLM's tokens arrive
            await ws.send(json.dumps({"type": "text", "text": token + " "}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    assert ready == {"type": "ready", "voice": service.require().default_voice, "sample_rate": 16000}
    assert [e["type"] for e in events] == ["mark", "audio"] * 3 + ["done"]
    marks = [e["text"] for e in events if e["type"] == "mark"]
    assert marks == [
        "Your order shipped this morning.",
        "It should arrive on Thursday before noon.",
        "Anything else",
    ]
    done = events[-1]
    assert done["reason"] == "end" and done["sentences"] == 3 and done["text"] == text
    words = [w for e in events if e["type"] == "mark" for w in e["words"]]  # word marks, in order
    assert " ".join(w["text"] for w in words) == text
    assert all(a["end_ms"] <= b["start_ms"] for a, b in zip(words, words[1:], strict=False))
    pcm = pcm_of(events)
    assert done["audio_ms"] == pytest.approx(len(pcm) / 2 / 16, abs=5)
    heard = await service.transcribe(AudioSource(data=_wav(pcm, 16000)))
    assert normalized_wer([text], [heard.transcript.text]) <= 0.15


async def test_truncate_answers_with_exactly_the_words_heard_before_the_barge_in(runtime):
    text = "Your order shipped this morning. It should arrive on Thursday before noon."
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": text}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
        words = [w for e in events if e["type"] == "mark" for w in e["words"]]
        sixth = words[5]  # "It": the first word of the second sentence
        played = (sixth["start_ms"] + sixth["end_ms"]) / 2  # the listener stopped inside it
        await ws.send(json.dumps({"type": "truncate", "played_ms": played}))
        truncated = await receive(ws)
        await ws.send(json.dumps({"type": "truncate", "played_ms": sixth["end_ms"], "utterance": 1}))
        with_it = await receive(ws)
        await ws.send(json.dumps({"type": "truncate", "played_ms": 1000, "utterance": 7}))
        unknown = await receive(ws)
    assert truncated["type"] == "truncated" and truncated["utterance"] == 1
    assert truncated["text"] == "Your order shipped this morning."
    assert truncated["words"] == words[:5]
    assert with_it["text"] == "Your order shipped this morning. It"
    assert unknown == {"type": "truncated", "utterance": None, "played_ms": 1000, "text": "", "words": []}


async def test_truncate_while_speaking_stops_the_utterance(runtime, long_text):
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": long_text}))
        first = await receive(ws)
        await ws.send(json.dumps({"type": "truncate", "played_ms": 1500}))
        events = [first, *(await until_done(ws))]
        if not any(e["type"] == "truncated" for e in events):
            events.append(await receive(ws))
    (truncated,) = [e for e in events if e["type"] == "truncated"]
    done = events[-1] if events[-1]["type"] == "done" else next(e for e in events if e["type"] == "done")
    assert done["reason"] == "cancelled" and done["sentences"] < len(long_text.split(". "))
    words = [w for e in events if e["type"] == "mark" for w in e["words"]]
    heard = [w for w in words if w["end_ms"] <= 1500]
    assert truncated["words"] == heard and heard and truncated["text"] == " ".join(w["text"] for w in heard)


async def test_cancel_stops_within_a_sentence_and_reports_what_was_delivered(settings):
    runtime, engine = gated(settings)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        engine.allowed.release()
        await ws.send(json.dumps({"type": "text", "text": "Go on. " * 30}))
        first = [await receive(ws), await receive(ws)]
        assert [e["type"] for e in first] == ["mark", "audio"]
        await ws.send(json.dumps({"type": "cancel"}))
        for _ in range(30):
            engine.allowed.release()
        events = first + await until_done(ws)
        done = events[-1]
        assert done["reason"] == "cancelled"
        audio = [e for e in events if e["type"] == "audio"]
        assert done["sentences"] == len(audio) <= 2  # at most the sentence being synthesized
        assert done["text"] == " ".join(e["text"] for e in events if e["type"] == "mark")
        assert engine.sentences <= len(audio) + 1
        await eventually(lambda: runtime.scheduler.synthesis.in_use == 0)
        # the slot is free and the socket open: the next turn speaks
        await ws.send(json.dumps({"type": "text", "text": "Next turn."}))
        await ws.send(json.dumps({"type": "end"}))
        after = await until_done(ws)
    assert after[-1]["reason"] == "end" and after[-1]["text"] == "Next turn." and after[-1]["utterance"] == 2


async def test_flush_speaks_text_without_an_end_mark(runtime):
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": "Version 3"}))
        await ws.send(json.dumps({"type": "text", "text": ".5 is out"}))
        await ws.send(json.dumps({"type": "flush"}))
        mark = await receive(ws)
        await receive(ws)
        await ws.send(json.dumps({"type": "end"}))
        done = (await until_done(ws))[-1]
    assert mark["text"] == "Version 3.5 is out" and done["sentences"] == 1


async def test_speech_socket_refusals_are_typed(service, settings):
    runtime = runtime_with(service, settings, max_text_chars=40)
    async with serve_http(runtime) as base:
        async with connect(ws_url(base, "/v1/speak/ws?voice=nobody")) as ws:
            error, code = await closed_with(ws)
        assert (error["type"], error["code"], code) == ("error", "voice_not_found", 4404)
        async with connect(ws_url(base, "/v1/speak/ws?speed=9")) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("invalid_argument", 4400) and "speed" in error["message"]
        async with connect(ws_url(base, "/v1/speak/ws")) as ws:
            await receive(ws)
            await ws.send(json.dumps({"type": "text", "text": "x" * 41}))
            events = await until_done(ws)
            assert [e["type"] for e in events] == ["error", "done"]
            assert events[0]["code"] == "text_too_long" and events[1]["reason"] == "error"
            await ws.send(json.dumps({"type": "shout"}))
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("invalid_argument", 4400) and "type" in error["message"]
        with pytest.raises(InvalidStatus):  # a foreign page's script may not open it
            async with connect(ws_url(base, "/v1/speak/ws"), origin="http://evil.example"):  # type: ignore[arg-type]
                pass


async def test_sockets_need_the_bearer_token_when_the_policy_has_tokens(settings, tmp_path):
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: a\nprincipals:\n  - id: a\n"
        f"    token_sha256: [{token_hash('a-token')}]\n    tools: [speak]\n"
    )
    runtime, _ = fake_runtime(settings, policy)
    async with serve_http(runtime) as base:
        for path in ("/v1/speak/ws", "/v1/transcribe/ws"):
            async with connect(ws_url(base, path)) as ws:
                error, code = await closed_with(ws)
            assert (error["code"], code) == ("unauthorized", 4401)
        auth = {"authorization": "Bearer a-token"}
        async with connect(ws_url(base, "/v1/transcribe/ws"), additional_headers=auth) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("forbidden", 4403)
        async with connect(ws_url(base, "/v1/speak/ws"), additional_headers=auth) as ws:
            assert (await receive(ws))["type"] == "ready"


async def test_live_transcription_gives_one_final_per_utterance(runtime, conversation):
    audio, spans = conversation
    pcm = (resample(audio, 24000).samples * 32767).astype("<i2").tobytes()
    url = ws_url("", "/v1/transcribe/ws?sample_rate=24000&partial_interval_ms=500")
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        ready = await receive(ws)
        for start in range(0, len(pcm), 4800):  # 100 ms frames
            await ws.send(pcm[start : start + 4800])
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    assert ready["type"] == "ready" and ready["sample_rate"] == 24000
    position = {(e["type"], e.get("utterance")): i for i, e in enumerate(events)}
    for n in (1, 2, 3):
        assert position[("speech_started", n)] < position[("speech_stopped", n)] < position[("final", n)]
    finals = [e for e in events if e["type"] == "final"]
    assert [f["utterance"] for f in finals] == [1, 2, 3]
    for final, text, (start, end) in zip(finals, UTTERANCES, spans, strict=True):
        assert normalized_wer([text], [final["text"]]) <= 0.15, final["text"]
        assert final["start"] <= start + 0.1 and final["end"] >= end - 0.1  # speech inside the span
        assert final["end"] - final["start"] < end - start + 1.5
        words = final["words"]
        assert len(words) >= len(text.split()) - 1
        assert all(final["start"] - 0.05 <= w["start"] <= w["end"] <= final["end"] + 0.05 for w in words)
    assert events[-1] == {
        "type": "done",
        "utterances": 3,
        "failed": 0,
        "audio_seconds": pytest.approx(audio.duration, abs=0.01),
    }


async def test_live_transcription_sends_partials_while_speech_goes_on(runtime, conversation):
    audio, _ = conversation
    pcm = (audio.samples * 32767).astype("<i2").tobytes()
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/transcribe/ws")) as ws:
        await receive(ws)
        events = []
        for start in range(0, len(pcm), 3200):  # paced as it is spoken, so decoding keeps up
            await ws.send(pcm[start : start + 3200])
            await anyio.sleep(0.1)
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    order: dict[tuple[str, object], int] = {}
    for i, event in enumerate(events):
        order.setdefault((event["type"], event.get("utterance")), i)
    partials = [e for e in events if e["type"] == "partial"]
    assert partials, "no partial results"
    for partial in partials:
        n = partial["utterance"]
        assert order[("speech_started", n)] < events.index(partial) < order[("final", n)]


async def test_a_silent_client_is_closed_with_timeout(service, settings):
    runtime = runtime_with(service, settings, socket_timeout_seconds=0.5)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/transcribe/ws")) as ws:
        await receive(ws)
        await ws.send(b"\0\0" * 1600)
        error, code = await closed_with(ws)
    assert (error["code"], code) == ("timeout", 4504) and "nothing arrived" in error["message"]


async def test_live_transcription_refusals_are_typed(runtime):
    async with serve_http(runtime) as base:
        async with connect(ws_url(base, "/v1/transcribe/ws?sample_rate=100")) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("invalid_argument", 4400) and "sample_rate" in error["message"]
        async with connect(ws_url(base, "/v1/transcribe/ws?language=de")) as ws:
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("invalid_argument", 4400) and "English" in error["message"]
        async with connect(ws_url(base, "/v1/transcribe/ws")) as ws:
            await receive(ws)
            await ws.send(b"\0\0\0")
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("invalid_argument", 4400) and "odd number" in error["message"]
        async with connect(ws_url(base, "/v1/transcribe/ws?sample_rate=8000")) as ws:
            await receive(ws)
            await ws.send(b"\0\0" * 8000 * 3)
            error, code = await closed_with(ws)
        assert (error["code"], code) == ("payload_too_large", 4413)


def _wav(pcm: bytes, rate: int) -> bytes:
    from speech_backend import encode_audio

    samples = (np.frombuffer(pcm, dtype="<i2") / 32768).astype(np.float32)
    return encode_audio(Audio(samples, rate), "wav")


async def test_a_client_listening_to_a_long_utterance_is_not_idle_but_a_silent_one_is_closed(settings):
    runtime, engine = gated(settings)
    runtime = runtime_with(runtime.service, settings, socket_timeout_seconds=0.5)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": "One. Two. Three. Four."}))
        await ws.send(json.dumps({"type": "end"}))
        for _ in range(4):  # the utterance takes 1.6 s: over three timeouts of silence from the client
            await anyio.sleep(0.4)
            engine.allowed.release()
        events = await until_done(ws)
        assert events[-1]["reason"] == "end" and events[-1]["sentences"] == 4
        error, code = await closed_with(ws)  # nothing more to say, nothing to listen to
    assert (error["code"], code) == ("timeout", 4504)


async def test_live_transcription_of_recorded_speech_gives_one_final_per_reading(runtime):
    from tests.evals.conftest import REPO

    manifest = REPO / ".cache" / "devset" / "manifest.jsonl"  # make test fetches it first
    items = {i["id"]: i for i in map(json.loads, manifest.read_text().splitlines())}
    chosen = [items[f"librivox/sense_and_sensibility_01_austen_64kb-{n}"] for n in ("0870", "0890", "0930")]
    gap = np.zeros(int(16000 * 1.5), np.float32)
    parts = [gap]
    for item in chosen:
        decoded = decode_audio((manifest.parent / item["path"]).read_bytes(), AudioLimits(), 16000)
        parts += [decoded.audio.samples, gap]
    pcm = (np.concatenate(parts) * 32767).astype("<i2").tobytes()
    url = "/v1/transcribe/ws?min_silence_ms=1000&partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        await receive(ws)
        for start in range(0, len(pcm), 3200):
            await ws.send(pcm[start : start + 3200])
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 3, [f["text"] for f in finals]
    for final, item in zip(finals, chosen, strict=True):
        assert normalized_wer([item["reference"]], [final["text"]]) <= 0.15, final["text"]


async def test_a_client_that_stops_mid_sentence_is_closed_with_timeout(service, settings):
    runtime = runtime_with(service, settings, socket_timeout_seconds=0.5)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": "Half a sentence and then"}))  # no end mark
        error, code = await closed_with(ws)
    assert (error["code"], code) == ("timeout", 4504)


async def test_a_blocked_pattern_split_across_two_sentences_is_refused_with_its_rule(settings, tmp_path):
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\ncontent:\n  blocked_patterns:\n    - {id: no-codes, pattern: 'launch\\W+codes'}\n"
    )
    runtime, _ = fake_runtime(settings, policy)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        for piece in ("Please say launch. ", "Codes are next. ", "Then stop."):
            await ws.send(json.dumps({"type": "text", "text": piece}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    assert [e["type"] for e in events] == ["mark", "audio", "error", "done"]
    assert events[0]["text"] == "Please say launch."
    assert (events[2]["code"], events[2]["rule"]) == ("policy_denied", "no-codes")
    assert events[3]["reason"] == "error" and events[3]["text"] == "Please say launch."


async def test_manual_turns_end_at_commit_and_clear_drops_the_open_one(runtime, speak):
    said = "Turn the volume down a little bit."
    pcm = (resample(speak(said), 16000).samples * 32767).astype("<i2").tobytes()
    url = "/v1/transcribe/ws?turn_detection=manual&partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        ready = await receive(ws)
        await ws.send(pcm[:32000])
        first = await receive(ws)
        await ws.send(json.dumps({"type": "clear"}))
        cleared = await receive(ws)
        await ws.send(json.dumps({"type": "commit"}))
        rejected = await receive(ws)
        await ws.send(pcm)
        await ws.send(json.dumps({"type": "commit"}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
    assert ready["turn_detection"] == "manual" and ready["vad"] is None
    assert first == {"type": "speech_started", "utterance": 1, "start": 0.0}
    assert cleared == {"type": "cleared", "utterance": 1}
    assert rejected["type"] == "rejected" and "nothing to commit" in rejected["message"]
    kinds = [e["type"] for e in events]
    assert kinds == ["speech_started", "speech_stopped", "final", "done"]
    assert events[0]["utterance"] == 2 and events[1]["forced"]
    assert normalized_wer([said], [events[2]["text"]]) <= 0.15
    assert events[2]["start"] == pytest.approx(1.0, abs=0.01)  # stream time: after the cleared second
