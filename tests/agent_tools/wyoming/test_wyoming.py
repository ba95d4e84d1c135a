"""The Wyoming surface driven by the `wyoming` library's TCP client, as Home Assistant drives it:
describe, synthesize (whole and streamed) and transcribe, through the real engines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from agent_tools.core.runtime import Runtime
from agent_tools.wyoming.server import WyomingServer, allowed_networks
from agent_tools.wyoming.wire import MAX_PAYLOAD_BYTES
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio

SAID = "The kitchen lights are off. The front door is locked."


@asynccontextmanager
async def wyoming_server(runtime: Runtime) -> AsyncIterator[int]:
    """The runtime's Wyoming listener on a free loopback port; yields the port."""
    server_settings = runtime.settings.server.model_copy(update={"wyoming_port": 0})
    runtime = Runtime.build(
        runtime.settings.model_copy(update={"server": server_settings}),
        runtime.service.require(),
        runtime.policy,
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(WyomingServer(runtime).serve)
        yield port
        tg.cancel_scope.cancel()


async def events_until(client: AsyncTcpClient, *kinds: str) -> list[Event]:
    """Events until one of `kinds` (or an error) arrives."""
    events: list[Event] = []
    with anyio.fail_after(120):
        while not events or events[-1].type not in (*kinds, "error"):
            event = await client.read_event()
            assert event is not None, events
            events.append(event)
    return events


def pcm_of(events: list[Event]) -> tuple[bytes, int]:
    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    assert chunks, [(e.type, e.data) for e in events]
    return b"".join(c.audio for c in chunks), chunks[0].rate


async def heard(client: AsyncTcpClient, pcm: bytes, rate: int, language: str | None = None) -> Transcript:
    """Transcribed as Home Assistant sends it: transcribe, audio-start, chunks, audio-stop."""
    await client.write_event(Transcribe(language=language).event())
    await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
    for at in range(0, len(pcm), 2048):
        await client.write_event(
            AudioChunk(rate=rate, width=2, channels=1, audio=pcm[at : at + 2048]).event()
        )
    await client.write_event(AudioStop().event())
    events = await events_until(client, "transcript")
    assert events[-1].type == "transcript", events[-1]
    chunks = "".join(TranscriptChunk.from_event(e).text for e in events if TranscriptChunk.is_type(e.type))
    transcript = Transcript.from_event(events[-1])
    assert chunks == transcript.text  # the streamed chunks join to the transcript
    return transcript


async def test_describe_lists_every_voice_with_its_language_and_the_recognizer(runtime):
    async with wyoming_server(runtime) as port, AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        (event,) = await events_until(client, "info")
    described = Info.from_event(event)
    (tts,) = described.tts
    (asr,) = described.asr
    voices = {v.name: v.languages for v in tts.voices}
    assert voices == {v.id: [v.language] for v in await runtime.service.voices()}
    assert tts.supports_synthesize_streaming and asr.supports_transcript_streaming
    assert "en" in asr.models[0].languages


async def test_synthesize_then_transcribe_round_trips_the_text(runtime):
    async with wyoming_server(runtime) as port, AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=SAID).event())
        events = await events_until(client, "audio-stop")
        pcm, rate = pcm_of(events)
        transcript = await heard(client, pcm, rate, language="en")
    assert [e.type for e in events].count("audio-start") == 1 and events[0].type == "audio-start"
    assert normalized_wer([SAID], [transcript.text]) <= 0.15, transcript.text
    assert transcript.language == "en"


async def test_streamed_synthesis_speaks_each_sentence_as_its_text_completes(settings, catalog_engines):
    voice = "af_heart"
    async with (
        wyoming_server(Runtime.build(settings, catalog_engines)) as port,
        AsyncTcpClient("127.0.0.1", port) as client,
    ):
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=voice)).event())
        words = SAID.split(" ")
        await client.write_event(SynthesizeChunk(text=" ".join(words[:6]) + " ").event())
        first = await events_until(client, "audio-stop")  # the first sentence, before the rest is sent
        for word in words[6:]:
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        await client.write_event(Synthesize(text=SAID, voice=SynthesizeVoice(name=voice)).event())  # a copy
        await client.write_event(SynthesizeStop().event())
        rest = await events_until(client, SynthesizeStopped().event().type)
        pcm, rate = pcm_of(first + rest)
        transcript = await heard(client, pcm, rate)
    kinds = [e.type for e in first + rest]
    assert kinds.count("audio-start") == kinds.count("audio-stop") == 2  # one per sentence
    assert AudioStart.from_event(first[0]).rate == 24000  # Kokoro's rate: the voice asked for
    assert normalized_wer([SAID], [transcript.text]) <= 0.15, transcript.text


async def test_refusals_are_error_events_with_the_contract_code_and_the_connection_goes_on(runtime):
    async with wyoming_server(runtime) as port, AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Synthesize(text="Hello.", voice=SynthesizeVoice(name="no-such-voice")).event()
        )
        (unknown,) = await events_until(client, "audio-stop")
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await client.write_event(AudioChunk(rate=8000, width=2, channels=1, audio=b"\0" * 320).event())
        (mixed,) = await events_until(client, "audio-stop")
        await client.write_event(Describe().event())
        (described,) = await events_until(client, "info")
    error = Error.from_event(unknown)
    assert error.code == "voice_not_found" and "list_voices" in error.text
    assert Error.from_event(mixed).code == "invalid_argument"
    assert described.type == "info"


async def test_an_oversized_event_is_refused_before_it_is_read_and_the_connection_closed(runtime):
    async with wyoming_server(runtime) as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        data = {"rate": 16000, "width": 2, "channels": 1}
        header = {"type": "audio-chunk", "data": data, "payload_length": MAX_PAYLOAD_BYTES + 1}
        await stream.send(json.dumps(header).encode() + b"\n")
        answer = b""
        with anyio.fail_after(10):
            with contextlib.suppress(anyio.EndOfStream):
                while True:  # the error, then the end of the stream
                    answer += await stream.receive()
        await stream.aclose()
    line, _, rest = answer.partition(b"\n")
    refused = json.loads(line)
    assert refused["type"] == "error"
    assert json.loads(rest[: refused["data_length"]])["code"] == "payload_too_large"


async def test_calls_run_as_the_configured_principal_under_its_policy(service, settings, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    audit = tmp_path / "audit.log"
    policy.write_text(
        "version: 1\nlocal_principal: local\naudit:\n  path: " + str(audit) + "\nprincipals:\n"
        "  - id: local\n  - id: home\n    tools: [list_voices, transcribe]\n"
    )
    server = settings.server.model_copy(update={"wyoming_principal": "home"})
    runtime = Runtime.build(
        settings.model_copy(update={"policy_file": policy, "server": server}), service.require()
    )
    try:
        async with wyoming_server(runtime) as port, AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Hello there.").event())
            (refused,) = await events_until(client, "audio-stop")
            await heard(client, np.zeros(16000, "<i2").tobytes(), 16000)
            await client.write_event(Describe().event())
            await events_until(client, "info")
    finally:
        runtime.policy.close()
    assert Error.from_event(refused).code == "forbidden"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {(line["principal"], line["tool"], line.get("transport")) for line in lines} >= {
        ("home", "speak", "wyoming"),
        ("home", "transcribe", "wyoming"),
        ("home", "list_voices", "wyoming"),
    }


def test_binding_beyond_loopback_needs_an_allowlist_of_client_networks(settings):
    server = settings.server.model_copy(update={"wyoming_host": "0.0.0.0"})
    with pytest.raises(ValueError, match="WYOMING_ALLOWED_NETWORKS"):
        allowed_networks(server)
    allowed = allowed_networks(server.model_copy(update={"wyoming_allowed_networks": ("192.168.1.0/24",)}))
    assert "192.168.1.0/24" in {str(n) for n in allowed} and "127.0.0.0/8" in {str(n) for n in allowed}


async def test_a_client_outside_the_allowed_networks_gets_no_answer(runtime):
    listener = runtime.settings.server.model_copy(
        update={"wyoming_port": 0, "wyoming_allowed_networks": ("192.168.1.0/24",)}
    )
    server = WyomingServer(
        Runtime.build(runtime.settings.model_copy(update={"server": listener}), runtime.service.require())
    )
    server.networks = server.networks[2:]  # the LAN only: loopback is outside it, as a stranger would be
    async with anyio.create_task_group() as tg:
        port = await tg.start(server.serve)
        client = AsyncTcpClient("127.0.0.1", port)
        await client.connect()
        await client.write_event(Describe().event())
        with anyio.fail_after(10), contextlib.suppress(ConnectionResetError):  # (closed, request unread)
            answer = await client.read_event()
            assert answer is None  # closed unanswered
        with contextlib.suppress(ConnectionResetError):
            await client.disconnect()
        tg.cancel_scope.cancel()
