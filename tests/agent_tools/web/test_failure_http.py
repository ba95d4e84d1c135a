"""Hostile and faulty inputs over HTTP (the OpenAI and speech routes, the probes, the server's own
start and reload): the outcome is typed, memory stays bounded, and the same process serves a speak +
transcribe round trip afterwards."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from websockets.asyncio.client import connect

from agent_tools.core.runtime import Runtime
from speech_backend import encode_audio
from tests.agent_tools.conftest import runtime_with, serve_http
from tests.agent_tools.failures import (
    MEGABYTE,
    PHRASE,
    assert_still_serving,
    error_of,
    mcp_as,
    phrase_audio,
    policy_runtime,
    rss_bytes,
)
from tests.agent_tools.web.test_sockets import receive, ws_url
from tests.media import container_bytes
from tests.typed import tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
__all__ = ["phrase_audio"]  # the fixture, shared


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


async def test_unknown_paths_and_methods_answer_with_the_error_object(runtime):
    async with serve_http(runtime) as base, httpx2.AsyncClient() as http:
        missing = await http.get(f"{base}/nothing-here")
        wrong_method = await http.get(f"{base}/v1/audio/speech")
    assert error_of(missing) == (404, "not_found")
    assert error_of(wrong_method) == (405, "method_not_allowed")


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
    from tests.agent_tools.web.test_shutdown import free_port, wait_ready

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
        "SPEECH_TOOLS_SERVER__GRPC_PORT": "0",  # (the default port is one per machine)
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
