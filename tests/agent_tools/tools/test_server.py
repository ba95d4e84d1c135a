"""The MCP tools in memory through `mcp.Client(server)`, in both protocol eras, on the real engines."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import AudioContent, ResourceLink

from agent_tools.core.runtime import Runtime
from agent_tools.settings import ServiceSettings
from agent_tools.tools.server import build_server
from speech_backend import AudioLimits, SpeechChunk, decode_audio, is_marked_synthetic
from speech_backend.fakes import FakeSynthesizer
from tests.agent_tools.conftest import eventually, fake_runtime, runtime_with
from tests.conftest import tone
from tests.media import container_bytes
from tests.typed import blob, first_text, text, tool_error
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
SNAPSHOTS = Path(__file__).parent / "snapshots"
MODES = ["auto", "legacy"]


def audio_of(result) -> bytes:
    return base64.b64decode(next(c for c in result.content if isinstance(c, AudioContent)).data)


def error_code(result) -> str:
    assert result.is_error and result.structured_content is None, result  # as TypeScript-SDK hosts need
    error = tool_error(result)
    assert result.content[0].text.startswith(f"[{error['code']}] ")
    assert error["request_id"] and isinstance(error["retryable"], bool)
    return str(error["code"])


async def assert_still_serving(client: Client) -> None:
    spoken = await client.call_tool("speak", {"text": "Still serving."})
    assert not spoken.is_error
    heard = await client.call_tool("transcribe", {"audio_uri": spoken.structured_content["audio_uri"]})
    assert "serving" in heard.structured_content["text"].lower()


async def test_by_default_speak_returns_a_resource_link_that_every_client_can_take(server):
    async with Client(server) as client:
        spoken = await client.call_tool("speak", {"text": "Short and sweet."})
        read = await client.read_resource(spoken.structured_content["audio_uri"])
    meta = spoken.structured_content
    assert meta["delivery"] == "resource_link" and meta["download_path"] == "/audio/" + meta["audio_uri"][8:]
    assert [c.type for c in spoken.content] == ["resource_link", "text"]  # no audio block
    assert len(base64.b64decode(blob(read))) == meta["bytes"]


@pytest.mark.parametrize("mode", MODES)
async def test_speak_returns_marked_audio_that_transcribes_back_to_its_text(server, mode):
    text = (
        "Please book a table for four people at the hotel tonight. "
        "We would like to sit by the window if there is room."
    )
    async with Client(server, mode=mode) as client:
        spoken = await client.call_tool("speak", {"text": text, "format": "mp3", "inline_audio": True})
        meta = spoken.structured_content
        assert not spoken.is_error and meta["synthetic"] is True and meta["delivery"] == "inline"
        assert [c.type for c in spoken.content] == ["audio", "resource_link", "text"]
        data = audio_of(spoken)
        assert len(data) == meta["bytes"] and meta["mime_type"] == "audio/mpeg"
        assert is_marked_synthetic(decode_audio(data, AudioLimits()).metadata)
        heard = await client.call_tool(
            "transcribe", {"audio_base64": base64.b64encode(data).decode(), "word_timestamps": True}
        )
    result = heard.structured_content
    assert normalized_wer([text], [result["text"]]) <= 0.10
    assert result["untrusted_content"] is True and result["words"] and result["language"] == "en"
    words = meta["words"]  # every written word, timed inside the audio, in order
    assert [w["text"] for w in words] == text.split()
    assert all(0 <= w["start"] < w["end"] <= meta["duration_seconds"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False))
    starts = {w["word"].strip(" .,").lower(): w["start"] for w in result["words"]}
    assert abs(words[-1]["start"] - starts["room"]) <= 0.15  # where Whisper hears it


async def test_a_large_speak_is_a_resource_link_that_resources_read_returns_whole(server, long_text):
    async with Client(server) as client:
        spoken = await client.call_tool("speak", {"text": long_text})
        meta = spoken.structured_content
        assert meta["delivery"] == "resource_link" and meta["bytes"] > 512 * 1024
        assert [c.type for c in spoken.content] == ["resource_link", "text"]
        link = next(c for c in spoken.content if isinstance(c, ResourceLink))
        read = await client.read_resource(str(link.uri))
    data = base64.b64decode(blob(read))
    assert len(data) == meta["bytes"] and read.contents[0].mime_type == "audio/wav"
    assert decode_audio(data, AudioLimits()).audio.duration == pytest.approx(
        meta["duration_seconds"], abs=0.01
    )


async def test_progress_is_reported_for_speak_and_transcribe(server, long_text):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(server) as client:
        spoken = await client.call_tool("speak", {"text": long_text}, progress_callback=on_progress)
        sentences = len(spoken.structured_content["sentences"])
        assert [p for p, _, _ in seen] == [float(i) for i in range(1, sentences + 1)]
        seen.clear()
        await client.call_tool(
            "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}, progress_callback=on_progress
        )
    assert seen and seen[-1][1] == pytest.approx(spoken.structured_content["duration_seconds"], abs=0.01)


async def test_list_voices_and_the_catalog_resource_describe_the_bundled_voice_without_paths(server):
    async with Client(server) as client:
        listed = (await client.call_tool("list_voices", {})).structured_content
        english = (await client.call_tool("list_voices", {"language": "en"})).structured_content
        german = (await client.call_tool("list_voices", {"language": "de"})).structured_content
        catalog = json.loads(text(await client.read_resource("voices://catalog")))
    assert listed["default_voice"] == "en_US-joe-medium" and listed["voices"] == english["voices"]
    assert german["voices"] == [] and catalog["voices"] == listed["voices"]
    assert listed["voices"][0]["licence"] == "CC0"
    assert "site-packages" not in json.dumps(listed) and ".onnx" not in json.dumps(listed)


def test_the_tool_list_and_schemas_match_the_snapshot(server):
    async def tools() -> list[dict[str, object]]:
        async with Client(server) as client:
            listed = await client.list_tools()
        return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]

    current = anyio.run(tools)
    path = SNAPSHOTS / "tools.json"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(path.read_text())


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("speak", {"text": ""}, "invalid_argument"),
    ("speak", {}, "invalid_argument"),
    ("speak", {"text": "hi", "colour": "blue"}, "invalid_argument"),
    ("speak", {"text": "hi", "speed": 9}, "invalid_argument"),
    ("speak", {"text": "hi", "format": "aiff"}, "invalid_argument"),
    ("speak", {"text": "hi", "format": "opus", "sample_rate": 22050}, "invalid_argument"),
    ("speak", {"text": "x" * 5001}, "text_too_long"),
    ("speak", {"text": "!!! ... ???"}, "invalid_argument"),
    ("speak", {"text": "hi", "voice": "../../etc/passwd"}, "voice_not_found"),
    ("speak", {"text": "hi", "voice": "https://example.com/v.onnx"}, "voice_not_found"),
    ("transcribe", {}, "invalid_argument"),
    ("transcribe", {"audio_base64": "AAAA", "audio_uri": "audio://x.wav"}, "invalid_argument"),
    ("transcribe", {"audio_base64": "not base64 at all!"}, "invalid_argument"),
    (
        "transcribe",
        {"audio_base64": base64.b64encode(b"plain text, not audio " * 40).decode()},
        "unsupported_media",
    ),
    (
        "transcribe",
        {"audio_base64": base64.b64encode(b"RIFF\x10\x00\x00\x00WAVEfmt ").decode()},
        "decode_failed",
    ),
    ("transcribe", {"audio_uri": "audio://nope.wav"}, "uri_forbidden"),
    ("transcribe", {"audio_uri": "file:///etc/passwd"}, "uri_forbidden"),
    ("transcribe", {"audio_uri": "http://127.0.0.1:1/a.wav"}, "uri_forbidden"),
    ("transcribe", {"audio_uri": "ftp://x/y"}, "uri_forbidden"),
    ("transcribe", {"audio_base64": "AAAA", "language": "klingon"}, "invalid_argument"),
    ("missing_tool", {}, "invalid_argument"),
]


@pytest.mark.parametrize("mode", MODES)
async def test_every_bad_call_gets_its_typed_error_and_the_server_keeps_serving(server, mode):
    async with Client(server, mode=mode) as client:
        for tool, args, code in BAD_CALLS:
            result = await client.call_tool(tool, args)
            assert error_code(result) == code, (tool, args, first_text(result))
        await assert_still_serving(client)


async def test_error_codes_match_the_snapshot():
    codes = sorted(
        {code for _, _, code in BAD_CALLS} | {"busy", "timeout", "audio_too_long", "payload_too_large"}
    )
    assert codes == json.loads((SNAPSHOTS / "error_codes.json").read_text())


async def test_audio_over_the_decoded_cap_is_audio_too_long(runtime, settings, service):
    small = Runtime.build(
        settings, dataclasses.replace(service.require(), audio_limits=AudioLimits(max_seconds=1.0))
    )
    clip = container_bytes(tone(2.0, rate=16000), "flac", "flac")
    async with Client(build_server(small)) as client:
        result = await client.call_tool("transcribe", {"audio_base64": base64.b64encode(clip).decode()})
    assert error_code(result) == "audio_too_long"


async def test_base64_over_the_byte_cap_is_payload_too_large_before_decoding(runtime, settings, service):
    small = Runtime.build(
        settings, dataclasses.replace(service.require(), audio_limits=AudioLimits(max_bytes=1000))
    )
    async with Client(build_server(small)) as client:
        result = await client.call_tool("transcribe", {"audio_base64": "A" * 4000})
    assert error_code(result) == "payload_too_large"


@pytest.fixture
def audio_root(tmp_path: Path, speak) -> Iterator[Path]:
    from speech_backend import encode_audio

    root = tmp_path / "allowed"
    root.mkdir()
    (root / "hello.flac").write_bytes(encode_audio(speak("Hello from a file."), "flac"))
    (tmp_path / "secret.flac").write_bytes((root / "hello.flac").read_bytes())
    (root / "escape.flac").symlink_to(tmp_path / "secret.flac")
    os.mkfifo(root / "pipe.wav")
    (root / "folder.wav").mkdir()
    yield root


async def test_file_uris_read_only_regular_files_under_the_allowed_roots(audio_root, settings, service):
    runtime = runtime_with(service, settings, file_roots=(audio_root,))
    async with Client(build_server(runtime)) as client:
        ok = await client.call_tool("transcribe", {"audio_uri": (audio_root / "hello.flac").as_uri()})
        assert "hello" in ok.structured_content["text"].lower()
        messages = set()
        for uri in [
            (audio_root / "escape.flac").as_uri(),
            (audio_root / "pipe.wav").as_uri(),
            (audio_root / "folder.wav").as_uri(),
            (audio_root / "absent.wav").as_uri(),
            f"file://{audio_root}/../secret.flac",
            "file://otherhost/etc/passwd",
        ]:
            result = await client.call_tool("transcribe", {"audio_uri": uri})
            assert error_code(result) == "uri_forbidden", uri
            messages.add(tool_error(result)["message"])
        assert len(messages) == 1  # the same words whether the file exists or not


class GatedSynthesizer(FakeSynthesizer):
    """A fake whose every sentence waits for the test to let it go."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.sentences = 0

    def _chunks(self, sentences: list[str], speed: float) -> Iterator[SpeechChunk]:
        for chunk in super()._chunks(sentences, speed):
            self.started.set()
            self.gate.wait(timeout=10)
            self.sentences += 1
            yield chunk


def gated_runtime(settings, **service_settings: object) -> tuple[Runtime, GatedSynthesizer]:
    engine = GatedSynthesizer()
    config = ServiceSettings(**service_settings)
    return fake_runtime(settings.model_copy(update={"service": config}), engine), engine


async def test_a_full_queue_answers_busy_at_once_with_retry_after_and_then_serves(settings):
    runtime, engine = gated_runtime(settings, max_utterances=1, max_queued=0)
    async with Client(build_server(runtime)) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "speak", {"text": "Holding the only slot."})
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(engine.started.wait)
            busy = await client.call_tool("speak", {"text": "Me too."})
        assert error_code(busy) == "busy"
        assert tool_error(busy)["retryable"] and tool_error(busy)["retry_after_ms"] > 0
        engine.gate.set()
    async with Client(build_server(runtime)) as client:
        assert not (await client.call_tool("speak", {"text": "Now there is room."})).is_error


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_call_stops_synthesis_and_frees_the_slot(settings, mode):
    runtime, engine = gated_runtime(settings, max_utterances=1, max_queued=0)
    async with Client(build_server(runtime), mode=mode) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("speak", {"text": "One. Two. Three. Four. Five. Six."})
        engine.gate.set()
        await eventually(lambda: runtime.scheduler.synthesis.in_use == 0)
        assert engine.sentences <= 2
        assert not (await client.call_tool("speak", {"text": "Next caller."})).is_error


async def test_a_call_past_its_deadline_is_timeout_and_its_work_stops(settings):
    runtime, engine = gated_runtime(settings, speak_timeout_seconds=0.3)
    async with Client(build_server(runtime)) as client:
        result = await client.call_tool("speak", {"text": "One. Two. Three. Four."})
        assert error_code(result) == "timeout"
        engine.gate.set()
        await eventually(lambda: runtime.scheduler.synthesis.in_use == 0)
    assert engine.sentences <= 1


async def test_before_the_models_load_calls_are_backend_unavailable_and_retryable(settings):
    runtime = Runtime.build(settings)
    async with Client(build_server(runtime)) as client:
        result = await client.call_tool("list_voices", {})
    assert error_code(result) == "backend_unavailable" and tool_error(result)["retryable"]


async def test_an_unexpected_failure_is_internal_with_no_details_leaked(settings):
    class Exploding(FakeSynthesizer):
        def voices(self):
            raise RuntimeError("secret internal detail /srv/models/x.onnx")

    async with Client(build_server(fake_runtime(settings, Exploding()))) as client:
        result = await client.call_tool("list_voices", {})
    assert error_code(result) == "internal"
    assert "secret" not in first_text(result) and "/srv" not in json.dumps(result.structured_content)
