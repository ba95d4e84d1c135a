"""The HTTP app on a real loopback socket: liveness at once, readiness once the models answer."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn

from agent_tools.app import build_app
from agent_tools.settings import Settings


@pytest.fixture
def base_url(engine_settings) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(Settings(engines=engine_settings)), log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def get(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_healthz_is_live_and_readyz_turns_ready_once_models_load(base_url):
    assert get(f"{base_url}/healthz") == (200, {"status": "ok"})
    deadline = time.monotonic() + 60
    status, body = get(f"{base_url}/readyz")
    while status != 200 and time.monotonic() < deadline:
        assert (status, body["status"]) == (503, "not_ready")
        time.sleep(0.1)
        status, body = get(f"{base_url}/readyz")
    assert (status, body) == (200, {"status": "ready", "recognizer": "tiny.en"})
