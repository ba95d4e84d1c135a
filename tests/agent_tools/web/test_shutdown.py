"""SIGTERM with work in flight: the running call completes, new work is refused, the process exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import Process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str) -> None:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(60):
            while True:
                try:
                    if (await http.get(f"{base}/readyz")).status_code == 200:
                        return
                except httpx2.HTTPError:
                    pass
                await anyio.sleep(0.2)


@asynccontextmanager
async def serving(cache_dir: Path, log: Path) -> AsyncIterator[tuple[Process, str]]:
    """`speech-tools serve` in a subprocess on a free port (stderr to `log`), once ready; killed if it
    is still running after the block."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPEECH_TOOLS_ENGINES__CACHE_DIR": str(cache_dir),
        "SPEECH_TOOLS_SERVER__GRPC_PORT": "0",
    }
    cmd = [str(Path(sys.executable).with_name("speech-tools")), "serve", "--port", str(port)]
    with log.open("wb") as sink:
        proc = await anyio.open_process(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    async with proc:
        try:
            await wait_ready(base)
            yield proc, base
        finally:
            if proc.returncode is None:
                proc.kill()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sigterm_lets_the_running_call_finish_and_exits_zero(cache_dir, long_text, mode, tmp_path):
    log = tmp_path / "server.log"
    async with serving(cache_dir, log) as (proc, base):
        results = []
        speaking = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            speaking.set()

        async def speak_long() -> None:
            # The server is gone when the client closes, so it must not try to end the session then.
            transport = streamable_http_client(f"{base}/mcp", terminate_on_close=False)
            async with Client(transport, mode=mode) as client:
                call = client.call_tool("speak", {"text": long_text}, progress_callback=on_progress)
                results.append(await call)

        async with anyio.create_task_group() as tg:
            tg.start_soon(speak_long)
            with anyio.fail_after(30):
                await speaking.wait()
            proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            code = await proc.wait()
        tail = log.read_text()[-3000:]  # what the server said, should this fail
        assert results and not results[0].is_error, tail
        assert len(results[0].structured_content["sentences"]) == 15
        assert code == 0, tail


async def test_sighup_reloads_the_policy_file_without_a_restart(cache_dir, tmp_path):
    from policies import token_hash

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: a\nprincipals:\n  - id: a\n"
        f"    token_sha256: [{token_hash('a-token')}]\n    tools: [speak]\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPEECH_TOOLS_ENGINES__CACHE_DIR": str(cache_dir),
        "SPEECH_TOOLS_POLICY_FILE": str(policy),
        "SPEECH_TOOLS_SERVER__GRPC_PORT": "0",  # (the default port is one per machine)
    }
    cmd = [str(Path(sys.executable).with_name("speech-tools")), "serve", "--port", str(port)]
    async with await anyio.open_process(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            await wait_ready(base)
            auth = {"authorization": "Bearer a-token"}
            async with httpx2.AsyncClient(headers=auth) as http:
                before = await http.get(f"{base}/v1/audio/voices")
                policy.write_text(policy.read_text().replace("tools: [speak]", "tools: [speak, list_voices]"))
                proc.send_signal(signal.SIGHUP)
                with anyio.fail_after(10):
                    while (after := await http.get(f"{base}/v1/audio/voices")).status_code != 200:  # noqa: ASYNC110
                        await anyio.sleep(0.1)
            assert before.status_code == 403 and after.json()["voices"]
        finally:
            proc.terminate()
            await proc.wait()


async def test_sigterm_lets_a_speech_stream_and_an_openai_speech_call_finish(cache_dir, long_text, tmp_path):
    log = tmp_path / "server.log"
    async with serving(cache_dir, log) as (proc, base):
        streaming = anyio.Event()
        stream_events: list[str] = []
        speech: list[httpx2.Response] = []

        async def stream() -> None:
            async with (
                httpx2.AsyncClient(timeout=120) as http,
                http.stream("POST", f"{base}/v1/speak/stream", json={"text": long_text}) as response,
            ):
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        stream_events.append(line[6:].strip())
                        streaming.set()

        async def whole_clip() -> None:
            async with httpx2.AsyncClient(timeout=120) as http:
                body = {"input": long_text, "response_format": "mp3"}
                speech.append(await http.post(f"{base}/v1/audio/speech", json=body))

        async with anyio.create_task_group() as tg:
            tg.start_soon(whole_clip)
            tg.start_soon(stream)
            with anyio.fail_after(30):
                await streaming.wait()
            proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            code = await proc.wait()
        tail = log.read_text()[-3000:]
        # 15 sentences, the first in two (its lead-in first): all of them sent
        assert stream_events[-1] == "done" and stream_events.count("audio") == 16, tail
        assert speech and speech[0].status_code == 200 and len(speech[0].content) > 100_000, tail
        assert code == 0, tail


async def test_a_drain_is_not_ready_refuses_new_speech_with_503_and_finishes_a_socket_utterance(
    cache_dir, tmp_path
):
    from websockets.asyncio.client import connect

    log = tmp_path / "server.log"
    async with serving(cache_dir, log) as (proc, base):
        url = base.replace("http://", "ws://") + "/v1/speak/ws"
        async with connect(url, max_size=None) as ws, httpx2.AsyncClient(timeout=60) as http:
            assert json.loads(await ws.recv())["type"] == "ready"
            for n in range(1, 61):  # text arriving sentence by sentence, as from an LLM
                await ws.send(json.dumps({"type": "text", "text": f"This is sentence {n}. "}))
            await ws.send(json.dumps({"type": "end"}))
            events = [json.loads(await ws.recv())]
            while events[-1]["type"] != "audio":
                events.append(json.loads(await ws.recv()))
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(10):
                while (ready := await http.get(f"{base}/readyz")).status_code == 200:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            refused = await http.post(
                f"{base}/v1/audio/speech", json={"input": "Hello.", "response_format": "wav"}
            )
            with anyio.fail_after(60):
                while events[-1]["type"] != "done":
                    events.append(json.loads(await ws.recv()))
        with anyio.fail_after(60):
            code = await proc.wait()
        tail = log.read_text()[-3000:]
        assert (ready.status_code, ready.json()["reason"]) == (503, "draining"), tail
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "busy", tail
        assert "retry-after" in refused.headers
        done = events[-1]
        assert not any(e["type"] == "error" for e in events), tail
        assert done["reason"] == "end" and done["text"].endswith("This is sentence 60."), tail
        assert code == 0, tail
