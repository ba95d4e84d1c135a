"""langchain-mcp-adapters (which pins mcp<2) against the server, from its own virtualenv made by
`make test` (`make clients`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.agent_tools.conftest import serve_http
from tests.wer import normalized_wer

pytestmark = [pytest.mark.anyio, pytest.mark.clients]
ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / ".venv-clients" / "bin" / "python"


@pytest.fixture(scope="module")
def clients_python() -> Path:
    assert PYTHON.is_file(), "the client virtualenv is missing: run `make test` (it runs `make clients`)"
    return PYTHON


async def test_langchain_mcp_adapters_with_default_settings_speak_transcribe_and_see_typed_errors(
    runtime, clients_python
):
    script = ROOT / "clients" / "python" / "langchain_adapters_session.py"
    async with serve_http(runtime) as base:
        done = await anyio.run_process([str(clients_python), str(script), f"{base}/mcp"], check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["tools"] == ["list_voices", "speak", "transcribe"]
    # no audio content block by default: the adapters raise NotImplementedError on one
    assert out["speak"]["status"] == "success" and out["speak"]["blocks"] == ["file", "text"]
    assert out["speak"]["structured"]["delivery"] == "resource_link"
    assert out["transcribe"]["status"] == "success"
    assert normalized_wer(["The parcel arrives on Thursday."], [out["transcribe"]["text"]]) <= 0.15
    assert out["error"]["status"] == "error" and "[voice_not_found] " in out["error"]["content"]


SPOKEN = "The parcel arrives on Thursday before noon."


async def run_client(python: Path, script: str, *args: str) -> dict[str, Any]:
    done = await anyio.run_process(
        [str(python), str(ROOT / "clients" / "python" / script), *args], check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


async def test_pipecat_openai_services_with_and_without_instructions_and_realtime_stt(
    runtime, clients_python
):
    async with serve_http(runtime) as base:
        out = await run_client(clients_python, "pipecat_session.py", f"{base}/v1", SPOKEN)
    for run in (out["plain"], out["instructions"]):  # instructions used to be a 400
        assert run["errors"] == [] and run["seconds"] > 1.5
    assert normalized_wer([SPOKEN], [out["text"]]) <= 0.15
    realtime = out["realtime"]  # /v1/realtime?intent=transcription, turns committed by the pipeline
    assert realtime["errors"] == []
    assert normalized_wer([SPOKEN], [realtime["text"]]) <= 0.15


async def test_livekit_openai_tts_with_its_defaults_stt_and_realtime_stt(runtime, clients_python):
    # LiveKit's defaults ask for gpt-4o-mini-tts as SSE deltas of MP3 and decode each delta as MP3
    async with serve_http(runtime) as base:
        out = await run_client(clients_python, "livekit_session.py", f"{base}/v1", SPOKEN)
    assert out["frames"] > 0 and out["sample_rate"] == 24000 and out["seconds"] > 1.5
    assert normalized_wer([SPOKEN], [out["text"]]) <= 0.15
    realtime = out["realtime"]  # /v1/realtime?intent=transcription with server VAD
    assert realtime["events"][0] == "start_of_speech" and realtime["events"][-1] == "final_transcript"
    assert normalized_wer([SPOKEN], [realtime["text"]]) <= 0.15


async def test_livekit_and_pipecat_nvidia_services_at_their_defaults_over_grpc(
    settings, catalog_engines, clients_python
):
    from agent_tools.core.runtime import Runtime
    from tests.agent_tools.riva.test_riva import grpc_server

    # their default voices (Magpie-Multilingual.EN-US.Leo, ...Aria) speak with Kokoro's
    async with grpc_server(Runtime.build(settings, catalog_engines)) as address:
        out = await run_client(clients_python, "riva_session.py", address, SPOKEN)
    livekit, pipecat = out["livekit"], out["pipecat"]
    assert livekit["rate"] == 16000 and livekit["seconds"] > 2  # its default voice, at its rate
    assert normalized_wer([SPOKEN], [livekit["text"]]) <= 0.15, livekit
    assert livekit["events"][-1] == "final_transcript"
    assert pipecat["tts_errors"] == [] and pipecat["stt_errors"] == [] and pipecat["seconds"] > 2
    assert pipecat["interim"] and normalized_wer([SPOKEN], [pipecat["text"]]) <= 0.15, pipecat
