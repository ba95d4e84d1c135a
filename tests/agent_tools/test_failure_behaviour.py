"""Hostile and faulty inputs, each through the surface where it does harm: the outcome is typed,
memory stays bounded, and the same process serves a speak + transcribe round trip afterwards."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent_tools.core.runtime import Runtime
from agent_tools.web.speak_socket import MAX_OPEN_UTTERANCES
from speech_backend import encode_audio
from tests.agent_tools.conftest import runtime_with, serve_http
from tests.agent_tools.test_sockets import receive, until_done, ws_url
from tests.media import container_bytes
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
PHRASE = "Please read the meter on the second floor."
MEGABYTE = 1024 * 1024


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def assert_still_serving(base: str) -> None:
    """The canary: a speak + transcribe round trip over MCP on the same server."""
    async with Client(f"{base}/mcp") as client:
        spoken = await client.call_tool("speak", {"text": PHRASE, "format": "flac"})
        heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert not spoken.is_error and not heard.is_error, (spoken, heard)
    assert normalized_wer([PHRASE], [heard.structured_content["text"]]) <= 0.2


def error_of(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# 1. Any channel count up to the cap decodes (8 channels used to crash the process).


@pytest.fixture(scope="module")
def phrase_audio(speak):
    return speak(PHRASE)


async def test_every_channel_count_up_to_the_cap_transcribes_over_the_openai_route(runtime, phrase_audio):
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        for channels in range(1, runtime.settings.engines.audio.max_channels + 1):
            wav = container_bytes(phrase_audio, "wav", "pcm_s16le", channels=channels)
            response = await http.post(
                f"{base}/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"}
            )
            assert response.status_code == 200, (channels, response.text)
            assert normalized_wer([PHRASE], [response.json()["text"]]) <= 0.2, channels
        await assert_still_serving(base)


async def test_eight_channel_audio_transcribes_over_mcp_and_legacy_sse(runtime, phrase_audio):
    flac = base64.b64encode(container_bytes(phrase_audio, "flac", "flac", channels=8)).decode()
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            over_mcp = await client.call_tool("transcribe", {"audio_base64": flac})
        async with Client(sse_client(f"{base}/sse")) as client:
            over_sse = await client.call_tool("transcribe", {"audio_base64": flac})
        await assert_still_serving(base)
    for result in (over_mcp, over_sse):
        assert not result.is_error, result
        assert normalized_wer([PHRASE], [result.structured_content["text"]]) <= 0.2


# 2. One WebSocket client may not hold unbounded utterances, tasks or memory.


async def test_a_flood_of_utterances_on_one_socket_is_closed_busy_with_memory_bounded(runtime):
    async with serve_http(runtime) as base:
        before = rss_bytes()
        async with connect(ws_url(base, "/v1/speak/ws")) as ws:
            await receive(ws)
            refused: dict[str, object] = {}
            done = 0
            with pytest.raises(ConnectionClosed), anyio.fail_after(60):
                for _ in range(20_000):
                    await ws.send(json.dumps({"type": "text", "text": "Hello there. "}))
                    await ws.send(json.dumps({"type": "end"}))
                while True:
                    event = json.loads(await ws.recv())
                    done += event["type"] == "done"
                    if event["type"] == "error":
                        refused = event
        assert ws.close_code == 4503 and refused["code"] == "busy"
        assert done <= MAX_OPEN_UTTERANCES  # what was open was ended; nothing past the cap was queued
        assert rss_bytes() - before < 100 * MEGABYTE
        await assert_still_serving(base)


async def test_many_small_messages_in_one_utterance_stay_within_the_text_cap(service, settings):
    runtime = runtime_with(service, settings, max_text_chars=2000)
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        for _ in range(5000):
            await ws.send(json.dumps({"type": "flush"}))  # nothing open: nothing to do, nothing kept
        for _ in range(2001):
            await ws.send(json.dumps({"type": "text", "text": "a"}))
        events = await until_done(ws)
        assert [e["type"] for e in events] == ["error", "done"] and events[0]["code"] == "text_too_long"
        await assert_still_serving(base)


# 3. Bodies are counted as they arrive and refused at the cap, however they are sent.


async def chunks_of(total: int, first: bytes = b"", size: int = 256 * 1024) -> AsyncIterator[bytes]:
    yield first
    block = b"x" * size
    for _ in range(total // size):
        yield block


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/speak/stream", "/v1/audio/transcriptions"])
async def test_a_huge_chunked_body_is_refused_at_the_cap_with_memory_bounded(runtime, path):
    headers, first = {"content-type": "application/json"}, b'{"input": "'
    if path.endswith("transcriptions"):
        headers = {"content-type": "multipart/form-data; boundary=b"}
        first = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'

    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=120) as http:
        before = rss_bytes()
        response = await http.post(f"{base}{path}", content=chunks_of(300 * MEGABYTE, first), headers=headers)
        grown = rss_bytes() - before
        assert "content-length" not in response.request.headers  # sent chunked: no size announced
        assert error_of(response) == (413, "payload_too_large")
        assert grown < 100 * MEGABYTE
        await assert_still_serving(base)


# 5. Failures inside a socket's task group keep their codes.


async def refused_while_streaming(ws, audio_pcm: bytes) -> tuple[str, int | None]:
    """Stream `audio_pcm` (100 ms frames) and `end`; the error code the server sent, and its close code."""
    with contextlib.suppress(ConnectionClosed):  # the server may close before the last frame
        for start in range(0, len(audio_pcm), 3200):
            await ws.send(audio_pcm[start : start + 3200])
        await ws.send(json.dumps({"type": "end"}))
    while (event := await receive(ws))["type"] != "error":
        pass
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return event["code"], ws.close_code


@pytest.fixture(scope="module")
def phrase_pcm(phrase_audio) -> bytes:
    import numpy as np

    from speech_backend import resample

    silence = np.zeros(16000, dtype=np.float32)
    samples = np.concatenate([silence, resample(phrase_audio, 16000).samples, silence])
    return (samples * 32767).astype("<i2").tobytes()


async def test_a_live_final_past_its_deadline_is_a_timeout_for_its_utterance_and_the_stream_goes_on(
    service, settings, phrase_pcm
):
    runtime = runtime_with(service, settings, transcribe_timeout_seconds=0.01)
    async with serve_http(runtime) as base:
        async with connect(ws_url(base, "/v1/transcribe/ws?partial_interval_ms=0")) as ws:
            await receive(ws)
            for start in range(0, len(phrase_pcm), 3200):
                await ws.send(phrase_pcm[start : start + 3200])
            await ws.send(json.dumps({"type": "end"}))
            events = await until_done(ws)
        service = runtime.service
        service.settings = service.settings.model_copy(update={"transcribe_timeout_seconds": 300.0})
        await assert_still_serving(base)
    failed = [e for e in events if e["type"] == "error"]
    assert [(e["code"], e["utterance"]) for e in failed] == [("timeout", 1)]
    assert events[-1]["type"] == "done" and (events[-1]["utterances"], events[-1]["failed"]) == (0, 1)


async def test_a_live_transcription_during_shutdown_closes_with_busy(runtime, phrase_pcm):
    url = "/v1/transcribe/ws?partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        await receive(ws)
        runtime.scheduler.shutdown()
        assert await refused_while_streaming(ws, phrase_pcm) == ("busy", 4503)


async def test_a_live_stream_in_a_shutdown_gets_the_final_of_the_turn_it_ended_then_busy(runtime, phrase_pcm):
    from agent_tools.core.admission import Priority

    recognition = runtime.scheduler.recognition
    url = "/v1/transcribe/ws?partial_interval_ms=0"
    async with serve_http(runtime) as base, connect(ws_url(base, url)) as ws:
        await receive(ws)
        async with recognition.slot(Priority.LIVE_FINAL), recognition.slot(Priority.LIVE_FINAL):
            for start in range(0, len(phrase_pcm), 3200):  # the turn ends in the second of silence after it
                await ws.send(phrase_pcm[start : start + 3200])
            while (await receive(ws))["type"] != "speech_stopped":
                pass
            runtime.scheduler.shutdown()  # while the turn's final waits for a slot
        events = []
        with pytest.raises(ConnectionClosed):
            while True:
                events.append(await receive(ws))
    assert [e["type"] for e in events] == ["final", "error"]
    assert normalized_wer([PHRASE], [events[0]["text"]]) <= 0.2
    assert events[1]["code"] == "busy" and ws.close_code == 4503


# 8. Caps apply to the whole utterance on the speech socket.


async def test_the_speech_cap_applies_to_the_whole_utterance_on_the_socket(service, settings):
    runtime = runtime_with(service, settings, max_speech_seconds=3.0)
    text = " ".join(f"This is sentence number {n} of the answer." for n in range(1, 9))
    async with serve_http(runtime) as base, connect(ws_url(base, "/v1/speak/ws")) as ws:
        await receive(ws)
        await ws.send(json.dumps({"type": "text", "text": text}))
        await ws.send(json.dumps({"type": "end"}))
        events = await until_done(ws)
        errors = [e for e in events if e["type"] == "error"]
        assert [e["code"] for e in errors] == ["audio_too_long"]
        assert events[-1]["reason"] == "error" and events[-1]["audio_ms"] <= 3000
        await assert_still_serving(base)


# 9. Malformed bodies are 400s with the contract's object, never 500s.


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = "XyZ") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def test_malformed_uploads_and_bodies_are_invalid_argument(runtime, phrase_audio):
    wav = encode_audio(phrase_audio, "wav")
    form = {"content-type": "multipart/form-data; boundary=XyZ"}
    deep = b"[" * 100_000 + b"]" * 100_000
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        upload = f"{base}/v1/audio/transcriptions"
        cases = {
            "no boundary": await http.post(
                upload,
                content=multipart(("file", "a.wav", wav)),
                headers={"content-type": "multipart/form-data"},
            ),
            "two files": await http.post(
                upload, content=multipart(("file", "a.wav", wav), ("file", "b.wav", wav)), headers=form
            ),
            "20 fields": await http.post(
                upload,
                content=multipart(("file", "a.wav", wav), *[(f"f{i}", None, b"x") for i in range(20)]),
                headers=form,
            ),
            "2 MB field": await http.post(
                upload,
                content=multipart(("file", "a.wav", wav), ("prompt", None, b"x" * 2 * MEGABYTE)),
                headers=form,
            ),
            "nested JSON (speech)": await http.post(
                f"{base}/v1/audio/speech", content=deep, headers={"content-type": "application/json"}
            ),
            "nested JSON (stream)": await http.post(
                f"{base}/v1/speak/stream", content=deep, headers={"content-type": "application/json"}
            ),
        }
        for case, response in cases.items():
            assert error_of(response) == (400, "invalid_argument"), (case, response.text)
        await assert_still_serving(base)


async def test_a_file_uri_with_a_nul_byte_is_uri_forbidden(service, settings, tmp_path):
    runtime = runtime_with(service, settings, file_roots=(tmp_path,))
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        result = await client.call_tool("transcribe", {"audio_uri": f"file://{tmp_path}/a%00.wav"})
        assert result.is_error and tool_error(result)["code"] == "uri_forbidden"
        await assert_still_serving(base)


async def test_unknown_paths_and_methods_answer_with_the_error_object(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        missing = await http.get(f"{base}/nothing-here")
        wrong_method = await http.get(f"{base}/v1/audio/speech")
    assert error_of(missing) == (404, "not_found")
    assert error_of(wrong_method) == (405, "method_not_allowed")


async def test_mcp_without_a_token_gets_the_contract_401(settings, tmp_path):
    from policies import token_hash
    from tests.agent_tools.test_policy_http import fake_runtime

    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nprincipals:\n  - id: a\n    token_sha256: [{token_hash('a-token')}]\n")
    runtime, _ = fake_runtime(settings, policy)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        response = await http.post(f"{base}/mcp", json=body, headers=headers)
    assert error_of(response) == (401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


# 10. Slow clients do not hold a connection forever.


def timed_runtime(service, settings) -> Runtime:
    server = settings.server.model_copy(
        update={"header_timeout_seconds": 0.5, "body_read_timeout_seconds": 0.5}
    )
    return runtime_with(service, settings.model_copy(update={"server": server}))


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def test_a_client_that_never_finishes_its_headers_is_disconnected(service, settings):
    async with serve_http(timed_runtime(service, settings)) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
            )  # and never the blank line
            closed = await anyio.to_thread.run_sync(read_all, sock)
        assert closed == b""
        await assert_still_serving(base)


async def test_a_body_that_stops_arriving_is_a_408_timeout(service, settings):
    async with serve_http(timed_runtime(service, settings)) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"POST /v1/speak/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
                + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"text": '
            )
            answer = await anyio.to_thread.run_sync(read_all, sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["error"]["code"] == "timeout"
        await assert_still_serving(base)


# 10. A WAV header that declares a sample size the decoder would misread.


async def test_a_seven_bit_wav_is_decode_failed_not_misread(runtime):
    from tests.media import wav_header

    seven_bit = wav_header(rate=16000, channels=1, bits=7, data_size=16000) + bytes(16000)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        response = await http.post(f"{base}/v1/audio/transcriptions", files={"file": ("a.wav", seven_bit)})
        assert error_of(response) == (400, "decode_failed") and "7-bit" in response.json()["error"]["message"]
        await assert_still_serving(base)


async def test_a_wav_with_an_unknown_format_tag_is_unsupported_media_on_both_surfaces(runtime):
    from tests.media import wav_header

    unknown = wav_header(rate=16000, channels=1, data_size=32000, fmt_tag=0xFFFF) + bytes(32000)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        response = await http.post(f"{base}/v1/audio/transcriptions", files={"file": ("a.wav", unknown)})
        async with Client(f"{base}/mcp") as client:
            result = await client.call_tool(
                "transcribe", {"audio_base64": base64.b64encode(unknown).decode()}
            )
        await assert_still_serving(base)
    assert error_of(response) == (415, "unsupported_media")
    assert tool_error(result)["code"] == "unsupported_media"


async def test_a_file_declaring_more_than_the_cap_is_refused_before_it_is_decoded(runtime):
    import numpy as np

    from speech_backend import Audio

    limit = runtime.service.require().audio_limits.max_seconds
    rate = 8000
    long = container_bytes(Audio(np.zeros(int(rate * (limit + 60)), np.float32), rate), "flac", "flac")
    async with serve_http(runtime) as base, httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(f"{base}/v1/audio/transcriptions", files={"file": ("long.flac", long)})
        await assert_still_serving(base)
    assert error_of(response) == (400, "audio_too_long")
    assert f"declares {limit + 60:.0f} s" in response.json()["error"]["message"]  # from its header


# 6. A clip is readable by the principal that made it (or one it shares with), and every read is audited.

CLIP_POLICY = """
version: 1
audit:
  path: audit.log
principals:
  - id: alice
    token_sha256: [{alice}]
    shares_audio_with: [carol]
  - id: bob
    token_sha256: [{bob}]
  - id: carol
    token_sha256: [{carol}]
"""


def policy_runtime(service, settings, tmp_path: Path, text: str, **service_settings: object) -> Runtime:
    """A runtime over the real engines with the policy file `text` (`{name}` is that name's token
    hash), and `service_settings` changed."""
    from policies import token_hash

    path = tmp_path / "policy.yaml"
    path.write_text(text.format(**{n: token_hash(f"{n}-token") for n in ("alice", "bob", "carol")}))
    with_policy = settings.model_copy(update={"policy_file": path})
    return runtime_with(service, with_policy, **service_settings)


@contextlib.asynccontextmanager
async def mcp_as(base: str, name: str):
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {name}-token"}, timeout=60) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_a_clip_is_readable_only_by_its_maker_and_those_it_is_shared_with(service, settings, tmp_path):
    from mcp import MCPError

    runtime = policy_runtime(service, settings, tmp_path, CLIP_POLICY)
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        async with mcp_as(base, "alice") as alice:
            spoken = (await alice.call_tool("speak", {"text": PHRASE, "format": "flac"})).structured_content
        uri, path = spoken["audio_uri"], spoken["download_path"]
        async with mcp_as(base, "bob") as bob:
            stolen = await bob.call_tool("transcribe", {"audio_uri": uri})
            with pytest.raises(MCPError, match="unknown or has expired"):
                await bob.read_resource(uri)
        bob_get = await http.get(base + path, headers={"authorization": "Bearer bob-token"})
        carol_get = await http.get(base + path, headers={"authorization": "Bearer carol-token"})
        async with mcp_as(base, "alice") as alice:
            heard = await alice.call_tool("transcribe", {"audio_uri": uri})
            read = await alice.read_resource(uri)
    assert stolen.is_error and tool_error(stolen)["code"] == "uri_forbidden"
    assert error_of(bob_get) == (403, "uri_forbidden")
    assert carol_get.status_code == 200 and carol_get.content == base64.b64decode(read.contents[0].blob)
    assert normalized_wer([PHRASE], [heard.structured_content["text"]]) <= 0.2
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    reads = [
        (r["principal"], r["decision"], r.get("code"), r["transport"])
        for r in lines
        if r["tool"] == "read_audio"
    ]
    assert reads == [
        ("bob", "deny", "uri_forbidden", "mcp"),
        ("bob", "deny", "uri_forbidden", "mcp"),
        ("bob", "deny", "uri_forbidden", "http"),
        ("carol", "allow", None, "http"),
        ("alice", "allow", None, "mcp"),
        ("alice", "allow", None, "mcp"),
    ]


# 7. An audit trail that cannot be written is visible, and refused or tolerated as the policy says.

FULL_DISK_POLICY = """
version: 1
audit:
  path: /dev/full
  on_failure: {mode}
"""


@pytest.mark.parametrize("mode", ["refuse", "continue"])
async def test_an_audit_file_on_a_full_disk_is_reported_and_handled_as_the_policy_says(
    service, settings, tmp_path, mode, caplog
):
    runtime = policy_runtime(service, settings, tmp_path, FULL_DISK_POLICY.replace("{mode}", mode))
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        assert (await http.get(f"{base}/readyz")).status_code == 200
        async with Client(f"{base}/mcp") as client:
            first = await client.call_tool("list_voices", {})  # served; its audit line is lost
            later = [await client.call_tool("list_voices", {}) for _ in range(3)]
        ready = await http.get(f"{base}/readyz")
        metrics = (await http.get(f"{base}/metrics")).text
        speech = await http.post(
            f"{base}/v1/audio/speech", json={"input": "Hello.", "response_format": "wav"}
        )
        unrecorded = [await http.post(f"{base}/v1/socket-tickets"), await http.get(f"{base}/v1/models")]
        if mode == "continue":
            await assert_still_serving(base)
    assert not first.is_error
    assert ready.status_code == 503 and ready.json()["reason"] == "audit_unwritable"
    assert "speech_audit_writable 0.0" in metrics and "speech_audit_records_lost_total 4.0" in metrics
    if mode == "refuse":
        assert all(tool_error(r)["code"] == "backend_unavailable" for r in later)
        assert error_of(speech) == (503, "backend_unavailable")
        assert [error_of(r) for r in unrecorded] == [(503, "backend_unavailable")] * 2
    else:
        assert not any(r.is_error for r in later) and speech.status_code == 200
        assert [r.status_code for r in unrecorded] == [200, 200]
    unwritable = [r for r in caplog.records if r.getMessage().startswith("audit file unwritable")]
    assert len(unwritable) == 1  # one line when it breaks, not one per call


# 10. One broken voice in an extra folder leaves the others serving; a broken default voice leaves
# the server live but not ready, saying why.


def voice_folder(tmp_path: Path, name: str, *, config: str, model: bytes = b"not an onnx model") -> Path:
    folder = tmp_path / "voices"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.onnx").write_bytes(model)
    (folder / f"{name}.onnx.json").write_text(config)
    return folder


def engine_settings_with(settings, **piper: object):
    engines = settings.engines
    return settings.model_copy(
        update={"engines": engines.model_copy(update={"piper": engines.piper.model_copy(update=piper)})}
    )


async def test_a_broken_voice_config_in_an_extra_folder_does_not_make_the_service_unready(settings, tmp_path):
    from tests.agent_tools.conftest import eventually

    folder = voice_folder(tmp_path, "broken", config="{ not json")
    runtime = Runtime.build(engine_settings_with(settings, voice_dirs=(folder,)))
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        await eventually(
            lambda: runtime.engines.loaded is not None or runtime.engines.error is not None, within=120
        )
        assert (await http.get(f"{base}/readyz")).status_code == 200
        voices = (await http.get(f"{base}/v1/audio/voices")).json()["voices"]
        assert [v["id"] for v in voices if v["engine"] == "piper"] == ["en_US-joe-medium"]
        await assert_still_serving(base)


async def test_a_corrupt_default_voice_leaves_the_server_live_but_not_ready(settings, tmp_path):
    from tests.agent_tools.conftest import eventually

    config = json.dumps({"audio": {"sample_rate": 22050}, "language": {"code": "en_US"}})
    folder = voice_folder(tmp_path, "corrupt", config=config)
    runtime = Runtime.build(engine_settings_with(settings, voice_dirs=(folder,), default_voice="corrupt"))
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        await eventually(lambda: runtime.engines.error is not None, within=120)
        live = await http.get(f"{base}/healthz")
        ready = await http.get(f"{base}/readyz")
        async with Client(f"{base}/mcp") as client:
            refused = await client.call_tool("list_voices", {})
    assert live.status_code == 200
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready" and ready.json()["reason"]
    assert tool_error(refused)["code"] == "backend_unavailable"


# 4. A reload may not switch authentication (and 10: nothing a client puts in a URL is logged).


async def test_a_reload_that_would_drop_the_tokens_is_refused_and_a_url_token_is_never_logged(
    cache_dir, tmp_path
):
    import os
    import signal
    import subprocess
    import sys

    from policies import token_hash
    from tests.agent_tools.test_shutdown import free_port, wait_ready

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: 1\nprincipals:\n  - id: alice\n    token_sha256: [{token_hash('alice-token')}]\n"
    )
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPEECH_TOOLS_ENGINES__CACHE_DIR": str(cache_dir),
        "SPEECH_TOOLS_POLICY_FILE": str(policy),
    }
    cmd = [str(Path(sys.executable).with_name("speech-tools")), "serve", "--port", str(port)]
    with log.open("wb") as sink:
        proc = await anyio.open_process(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    async with proc:
        try:
            await wait_ready(base)
            async with connect(ws_url(base, "/v1/speak/ws?token=alice-token")) as ws:
                error = await receive(ws)  # a token in the URL is not a credential
            assert error["code"] == "unauthorized"
            for weaker in ("", "version: 1\n"):
                policy.write_text(weaker)
                refusals = log.read_text().count("policy reload refused")
                proc.send_signal(signal.SIGHUP)
                with anyio.fail_after(10):
                    while log.read_text().count("policy reload refused") == refusals:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
            async with httpx2.AsyncClient() as http:
                tokenless_route = await http.get(f"{base}/v1/audio/voices")
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
                accept = {"accept": "application/json, text/event-stream"}
                tokenless_mcp = await http.post(f"{base}/mcp", json=body, headers=accept)
            async with mcp_as(base, "alice") as alice:
                spoken = await alice.call_tool("speak", {"text": PHRASE, "format": "flac"})
                heard = await alice.call_tool(
                    "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
                )
        finally:
            proc.terminate()
            await proc.wait()
    assert error_of(tokenless_route) == (401, "unauthorized") and error_of(tokenless_mcp) == (
        401,
        "unauthorized",
    )
    assert normalized_wer([PHRASE], [heard.structured_content["text"]]) <= 0.2
    text = log.read_text()
    assert "WebSocket /v1/speak/ws?[query removed]" in text and "alice-token" not in text
