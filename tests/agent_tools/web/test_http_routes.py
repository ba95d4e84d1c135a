"""The HTTP data plane: OpenAI-compatible routes through the official client, streamed speech,
barge-in, and the same errors and policies as MCP."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import numpy as np
import pytest
from openai import APIStatusError, OpenAI

from agent_tools.core.runtime import Runtime
from agent_tools.core.sources import AudioSource
from speech_backend import Audio, SpeechChunk, encode_audio, resample
from speech_backend.fakes import FakeSynthesizer
from tests.agent_tools.conftest import eventually, serve_http
from tests.wer import normalized_wer
from tests.windows import room_in_the_window

pytestmark = pytest.mark.anyio


async def test_the_openai_client_round_trips_speech_and_transcription(runtime, tmp_path: Path):
    text = "The official client works against this server without changes. Speech goes out, text comes back."
    async with serve_http(runtime) as base:

        def use_client() -> dict[str, Any]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused") as client:
                mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input=text).read()
                path = tmp_path / "speech.mp3"
                path.write_bytes(mp3)
                with path.open("rb") as f:
                    plain = client.audio.transcriptions.create(model="whisper-1", file=f)
                with path.open("rb") as f:
                    verbose = client.audio.transcriptions.create(
                        model="whisper-1",
                        file=f,
                        response_format="verbose_json",
                        timestamp_granularities=["word"],
                    )
                with path.open("rb") as f:
                    srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
                pcm = client.audio.speech.create(
                    model="tts-1", voice="alloy", input="Raw samples.", response_format="pcm"
                )
                return {
                    "mp3": mp3,
                    "plain": plain.text,
                    "verbose": verbose,
                    "srt": srt,
                    "pcm": pcm.read(),
                    "models": [m.id for m in client.models.list()],
                }

        got = await anyio.to_thread.run_sync(use_client)
    assert got["mp3"][:3] == b"ID3"
    assert normalized_wer([text], [got["plain"]]) <= 0.10
    assert got["verbose"].language == "en" and got["verbose"].words
    assert got["srt"].startswith("1\n00:00:00,000 --> ")
    assert len(got["pcm"]) % 2 == 0 and 0.5 < len(got["pcm"]) / 2 / 24000 < 3
    assert {"tts-1", "whisper-1", "tiny.en"} <= set(got["models"])


async def test_openai_client_errors_carry_the_contract_codes_and_statuses(runtime):
    async with serve_http(runtime) as base:

        def failures() -> list[tuple[int, str]]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                out = []
                cases: tuple[dict[str, Any], ...] = (
                    {"voice": "no-such-voice", "input": "hi"},
                    {"voice": "alloy", "input": "x" * 5001},
                    {"voice": "alloy", "input": "hi", "speed": 7.0},
                )
                for kwargs in cases:
                    try:
                        client.audio.speech.create(model="tts-1", **kwargs)
                    except APIStatusError as exc:
                        assert isinstance(exc.body, dict)
                        out.append((exc.status_code, exc.body["code"]))
                return out

        assert await anyio.to_thread.run_sync(failures) == [
            (404, "voice_not_found"),
            (400, "text_too_long"),
            (400, "invalid_argument"),
        ]


@pytest.mark.parametrize("fmt", ["pcm", "mp3", "opus", "aac", "flac", "wav"])
async def test_openai_sse_deltas_carry_the_requested_format(runtime, fmt):
    text = "First part. Second part."
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        body = {
            "model": "tts-1",
            "voice": "alloy",
            "input": text,
            "stream_format": "sse",
            "response_format": fmt,
        }
        response = await http.post(f"{base}/v1/audio/speech", json=body)
        events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        data = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
        words = await heard(runtime, data, fmt)
    types = [e["type"] for e in events]
    assert types[-1] == "speech.audio.done" and set(types[:-1]) == {"speech.audio.delta"} and len(types) >= 3
    assert normalized_wer([text], [words]) <= 0.15


async def heard(runtime, data: bytes, fmt: str) -> str:
    """What Whisper hears in a streamed body of `fmt` (raw PCM is OpenAI's 24 kHz; AAC is ADTS)."""
    import av

    from speech_backend import Audio, encode_audio

    if fmt in ("pcm", "aac"):
        if fmt == "pcm":
            samples, rate = (np.frombuffer(data, dtype="<i2") / 32768).astype(np.float32), 24000
        else:
            with av.open(io.BytesIO(data), mode="r", format="aac") as container:
                frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
                rate = container.streams.audio[0].rate
            samples = np.concatenate(frames).astype(np.float32)
        data = encode_audio(Audio(samples, rate), "wav")
    heard = await runtime.service.transcribe(AudioSource(data=data))
    return str(heard.transcript.text)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm", "opus", "aac", "flac"])
async def test_openai_speech_streams_each_format_before_synthesis_ends(settings, fmt):
    runtime, engine = gated(settings)
    text = "One sentence here. Another one there. And a third."
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        body = {"model": "tts-1", "input": text, "response_format": fmt, "instructions": "Speak warmly."}
        async with http.stream("POST", f"{base}/v1/audio/speech", json=body) as response:
            engine.allowed.release()  # the first sentence only
            chunks = response.aiter_bytes()
            first = await anext(chunks)
            spoken_before_first_byte = engine.sentences
            for _ in range(3):
                engine.allowed.release()
            rest = b"".join([c async for c in chunks])
    assert response.status_code == 200 and response.headers["x-speech-instructions"] == "ignored"
    assert first and spoken_before_first_byte == 1  # bytes arrive while later sentences wait
    assert len(first + rest) > len(first)


async def test_openai_speed_outside_the_engine_range_is_a_clear_400(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(f"{base}/v1/audio/speech", json={"input": "Hi.", "speed": 4.0})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_argument"
    assert response.json()["error"]["message"] == "speed must be between 0.5 and 2 (got 4)"


class GatedSynthesizer(FakeSynthesizer):
    """A fake that yields a sentence only when the test allows one more."""

    def __init__(self) -> None:
        self.allowed = threading.Semaphore(0)
        self.sentences = 0
        self.spoken: list[str] = []

    def _chunks(self, sentences: list[str], speed: float) -> Iterator[SpeechChunk]:
        for chunk in super()._chunks(sentences, speed):
            self.allowed.acquire(timeout=10)
            self.sentences += 1
            self.spoken.append(chunk.text)
            yield chunk


def gated(settings) -> tuple[Runtime, GatedSynthesizer]:
    from tests.agent_tools.conftest import fake_runtime

    engine = GatedSynthesizer()
    return fake_runtime(settings, engine), engine


async def read_events(response: httpx2.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line[5:])


async def test_streamed_speech_sends_the_first_audio_before_later_sentences_are_synthesized(settings):
    runtime, engine = gated(settings)
    text = "One. Two. Three. Four."
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=30) as http:
        engine.allowed.release()
        seen: list[str] = []
        async with http.stream("POST", f"{base}/v1/speak/stream", json={"text": text}) as response:
            assert response.status_code == 200
            async for event, data in read_events(response):
                seen.append(event)
                if event == "audio" and len(seen) == 2:
                    assert engine.sentences == 1  # the rest of the text is not spoken yet
                    for _ in range(3):
                        engine.allowed.release()
                if event == "done":
                    assert data["sentences"] == 4 and data["text"] == text
    assert seen == ["mark", "audio"] * 4 + ["done"]


async def test_a_listener_who_hangs_up_stops_synthesis_within_a_sentence(settings):
    runtime, engine = gated(settings)
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=30) as http:
        engine.allowed.release()
        async with http.stream("POST", f"{base}/v1/speak/stream", json={"text": "Go. " * 50}) as response:
            async for event, _ in read_events(response):
                if event == "audio":
                    break  # barge-in: stop listening after the first sentence
        for _ in range(50):
            engine.allowed.release()
        await eventually(lambda: runtime.scheduler.synthesis.in_use == 0)
    assert engine.sentences <= 3


async def test_streamed_speech_refuses_bad_input_with_a_status_before_streaming(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        unknown_voice = await http.post(f"{base}/v1/speak/stream", json={"text": "hi", "voice": "x/../y"})
        extra_field = await http.post(f"{base}/v1/speak/stream", json={"text": "hi", "volume": 11})
        not_json = await http.post(
            f"{base}/v1/speak/stream", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert (unknown_voice.status_code, unknown_voice.json()["error"]["code"]) == (404, "voice_not_found")
    assert (extra_field.status_code, extra_field.json()["error"]["code"]) == (400, "invalid_argument")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "invalid_argument")


async def test_http_routes_apply_the_same_tokens_and_policy_as_mcp(settings, tmp_path):
    from policies import token_hash
    from tests.agent_tools.web.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: a\nprincipals:\n  - id: a\n"
        f"    token_sha256: [{token_hash('a-token')}]\n    tools: [list_voices]\n    rate_per_minute: 2\n"
    )
    runtime, _ = fake_runtime(settings, policy)
    await room_in_the_window(15)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        anonymous = await http.get(f"{base}/v1/audio/voices")
        auth = {"authorization": "Bearer a-token"}
        speak = await http.post(f"{base}/v1/audio/speech", json={"input": "hi"}, headers=auth)
        listed = [await http.get(f"{base}/v1/audio/voices", headers=auth) for _ in range(2)]
        flooded = await http.get(f"{base}/v1/audio/voices", headers=auth)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert (speak.status_code, speak.json()["error"]["code"]) == (403, "forbidden")
    assert [r.status_code for r in listed] == [200, 200]
    assert flooded.status_code == 429 and int(flooded.headers["retry-after"]) >= 1


async def test_a_stream_error_event_carries_the_request_id_of_its_audit_line(
    service, settings, tmp_path, long_text
):
    from tests.agent_tools.failures import policy_runtime

    policy = "version: 1\naudit:\n  path: audit.log\n"
    runtime = policy_runtime(service, settings, tmp_path, policy, max_speech_seconds=2.0)
    async with (
        serve_http(runtime) as base,
        httpx2.AsyncClient(timeout=60) as http,
        http.stream("POST", f"{base}/v1/speak/stream", json={"text": long_text}) as response,
    ):
        errors = [data async for event, data in read_events(response) if event == "error"]
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [e["code"] for e in errors] == ["audio_too_long"]
    assert [line["request_id"] for line in lines if line["tool"] == "speak"] == [errors[0]["request_id"]]


async def test_the_openai_client_receives_streamed_speech_before_synthesis_ends(settings):
    runtime, engine = gated(settings)
    async with serve_http(runtime) as base:

        def listen() -> tuple[int, int, bytes]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                with client.audio.speech.with_streaming_response.create(
                    model="tts-1",
                    voice="alloy",
                    input="First sentence. Second sentence. Third one.",
                    response_format="pcm",
                ) as response:
                    chunks = response.iter_bytes()
                    first = next(chunks)
                    sentences_when_first_arrived = engine.sentences
                    engine.allowed.release(3)
                    rest = b"".join(chunks)
                return sentences_when_first_arrived, len(first), first + rest

        engine.allowed.release()  # the first sentence only, until the client has its first bytes
        sentences, first_bytes, pcm = await anyio.to_thread.run_sync(listen)
    assert sentences == 1 and first_bytes > 0
    assert len(pcm) > first_bytes and len(pcm) % 2 == 0


async def test_the_openai_client_streams_a_transcription_as_delta_and_done_events(runtime, tmp_path: Path):
    text = "Streaming transcription sends the text as it is recognised. Then it says it is done."
    async with serve_http(runtime) as base:

        def use_client() -> tuple[list[str], list[str], str]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                path = tmp_path / "speech.wav"
                path.write_bytes(
                    client.audio.speech.create(
                        model="tts-1", voice="alloy", input=text, response_format="wav"
                    ).read()
                )
                with path.open("rb") as f:
                    events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
                deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
                done = [e.text for e in events if e.type == "transcript.text.done"]
                return [e.type for e in events], deltas, "".join(deltas) if len(done) == 1 and done[0] else ""

        types, deltas, joined = await anyio.to_thread.run_sync(use_client)
    assert types[-1] == "transcript.text.done" and deltas and set(types[:-1]) == {"transcript.text.delta"}
    assert normalized_wer([text], [joined]) <= 0.15


async def test_streamed_speech_marks_carry_each_words_span_in_the_utterance(runtime):
    text = "Good morning. The parcel arrives on Thursday before noon."
    marks, audio_ms = [], 0.0
    async with (
        serve_http(runtime) as base,
        httpx2.AsyncClient(timeout=60) as http,
        http.stream("POST", f"{base}/v1/speak/stream", json={"text": text}) as response,
    ):
        async for event, data in read_events(response):
            if event == "mark":
                marks.append(data)
            elif event == "done":
                audio_ms = data["audio_ms"]
    words = [w for m in marks for w in m["words"]]
    assert [m["type"] for m in marks] == ["sentence", "sentence"]
    assert " ".join(w["text"] for w in words) == text
    second = marks[1]
    assert second["words"][0]["start_ms"] >= second["offset_ms"]  # utterance time, not the sentence's
    assert all(0 <= w["start_ms"] < w["end_ms"] <= audio_ms for w in words)


async def test_streamed_speech_opens_with_a_lead_in_and_the_joined_audio_says_the_whole_text(runtime):
    text = "Your table for four is booked for seven thirty tonight. Please arrive on time."
    marks: list[str] = []
    pcm = b""
    whole = await runtime.service.speak(text, fmt="wav")
    async with (
        serve_http(runtime) as base,
        httpx2.AsyncClient(timeout=60) as http,
        http.stream("POST", f"{base}/v1/speak/stream", json={"text": text}) as response,
    ):
        async for event, data in read_events(response):
            if event == "mark":
                marks.append(data["text"])
            elif event == "audio":
                pcm += base64.b64decode(data["pcm16"])
        audio = Audio((np.frombuffer(pcm, dtype="<i2") / 32768).astype(np.float32), 22050)
        heard = await runtime.service.transcribe(AudioSource(data=encode_audio(audio, "wav")))
    assert marks == ["Your table for four", "is booked for seven thirty tonight.", "Please arrive on time."]
    assert [s.text for s in whole.sentences] == [marks[0] + " " + marks[1], marks[2]]  # a clip: no lead-in
    assert normalized_wer([text], [heard.transcript.text]) <= 0.1  # said whole across the join


async def test_a_transcription_whose_client_hangs_up_is_stopped_and_audited_cancelled(
    service, settings, tmp_path: Path, speak
):
    from tests.agent_tools.failures import policy_runtime

    runtime = policy_runtime(service, settings, tmp_path, "version: 1\naudit:\n  path: audit.log\n")
    clip = resample(speak("This recording goes on for a long while, sentence after sentence."), 16000)
    wav = encode_audio(Audio(np.resize(clip.samples, 16000 * 300), 16000), "wav")  # 5 minutes
    recognition, audit = runtime.scheduler.recognition, tmp_path / "audit.log"

    def transcribe_lines() -> list[dict[str, Any]]:
        lines = audit.read_text().splitlines() if audit.exists() else []
        return [json.loads(line) for line in lines if json.loads(line)["tool"] == "transcribe"]

    async with serve_http(runtime) as base:
        async with anyio.create_task_group() as tg:

            async def upload() -> None:
                async with httpx2.AsyncClient(timeout=600) as http:
                    files = {"file": ("long.wav", wav, "audio/wav")}
                    await http.post(
                        f"{base}/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}
                    )

            tg.start_soon(upload)
            await eventually(lambda: recognition.in_use == 1, within=60)
            tg.cancel_scope.cancel()  # the client hangs up while its audio is being transcribed
        await eventually(lambda: bool(transcribe_lines()), within=300)
        assert recognition.in_use == 0 and runtime.scheduler.in_flight == 0
    assert [line["code"] for line in transcribe_lines()] == ["cancelled"]  # stopped, not finished


# Admission is decided before the status line: a refusal for capacity is a status, never a 200 with
# no audio or an error event in place of the stream.

SPEECH_BODIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/v1/audio/speech", {"input": "Hello there.", "response_format": "wav"}),
    ("/v1/audio/speech", {"input": "Hello there.", "response_format": "mp3", "stream_format": "sse"}),
    ("/v1/speak/stream", {"text": "Hello there."}),
)


async def test_speech_refused_for_capacity_is_a_503_with_retry_after_on_every_streamed_route(
    service, settings
):
    from tests.agent_tools.conftest import runtime_with

    runtime = runtime_with(service, settings, max_utterances=1, max_queued=0)
    synthesis = runtime.scheduler.synthesis
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=30) as http:

        def openai_refusal() -> APIStatusError:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                with pytest.raises(APIStatusError) as refused:
                    client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")
                return refused.value

        async with synthesis.slot():  # the one utterance slot is taken
            refusals = [await http.post(f"{base}{path}", json=body) for path, body in SPEECH_BODIES]
            by_client = await anyio.to_thread.run_sync(openai_refusal)
        served = [await http.post(f"{base}{path}", json=body) for path, body in SPEECH_BODIES]
        await eventually(lambda: synthesis.in_use == 0)  # each stream gave its slot back
    for response in refusals:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "busy" and int(response.headers["retry-after"]) >= 1
    assert by_client.status_code == 503 and isinstance(by_client.body, dict)
    assert by_client.body["code"] == "busy" and by_client.body["retryable"] is True
    assert all(r.status_code == 200 for r in served)
    assert len(served[0].content) > 8000  # a second of audio and more
    assert '"speech.audio.done"' in served[1].text and "event: done" in served[2].text


async def test_a_client_gone_before_the_first_byte_gives_the_utterance_slot_back(service, settings):
    from tests.agent_tools.conftest import runtime_with

    runtime = runtime_with(service, settings, max_utterances=1, max_queued=0)
    synthesis = runtime.scheduler.synthesis
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=30) as http:
        for path, body in SPEECH_BODIES:
            async with http.stream("POST", f"{base}{path}", json=body) as response:
                assert response.status_code == 200  # and the client leaves without reading
            await eventually(lambda: synthesis.in_use == 0 and runtime.work_in_flight == 0)
        after = await http.post(f"{base}/v1/audio/speech", json=SPEECH_BODIES[0][1])
    assert after.status_code == 200 and len(after.content) > 8000
