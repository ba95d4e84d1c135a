"""Traces: one call on any surface is one trace — transport, policy, queue, each sentence's
synthesis, encoding — under the caller's W3C `traceparent` (HTTP header or MCP `_meta`), with the
request id and principal as attributes and never the text or audio; off, tracing costs nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import RequestParamsMeta
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer

from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.core.tracing import Tracing
from agent_tools.settings import Settings
from tests.agent_tools.conftest import serve_http

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TEXT = "The first train leaves at nine. The second one leaves at ten. Both stop at every station."


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(settings: Settings, service: SpeechService, spans: InMemorySpanExporter) -> Runtime:
    """A runtime over the real engines whose spans land in `spans`."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Runtime.build(settings, service.require(), tracing=Tracing.to(provider))


def in_trace(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == TRACE_ID
    ]


def names(spans: Sequence[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]


def assert_no_text_or_audio(spans: Sequence[ReadableSpan]) -> None:
    words = {w.strip(".").lower() for w in TEXT.split() if len(w) > 4}
    for span in spans:
        for key, value in (span.attributes or {}).items():
            assert not isinstance(value, bytes), key
            if isinstance(value, str):
                assert not words & {w.strip(".").lower() for w in value.split()}, (span.name, key, value)


async def test_one_speak_over_mcp_is_one_trace_under_the_meta_traceparent(traced, spans):
    async with (
        serve_http(traced) as base,
        httpx2.AsyncClient() as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        meta = RequestParamsMeta(traceparent=TRACEPARENT)  # type: ignore[typeddict-unknown-key]
        result = await client.call_tool("speak", {"text": TEXT}, meta=meta)
    assert not result.is_error
    trace = in_trace(spans)
    tool = next(s for s in trace if s.name == "tools/call speak")
    assert tool.parent is not None and f"{tool.parent.span_id:016x}" == PARENT_ID  # the caller's span
    assert tool.attributes is not None
    assert tool.attributes["enduser.id"] == traced.policy.local().id
    assert re.fullmatch(r"[0-9a-f]{16}", str(tool.attributes["speech.request_id"]))
    got = names(trace)
    for step in ("policy", "queue synthesis", "queue sentences", "encode"):
        assert step in got, got
    sentences = [s for s in trace if s.name == "synthesize sentence"]
    assert len(sentences) == 3 and [
        s.attributes["speech.sentence.index"] for s in sentences if s.attributes
    ] == [0, 1, 2]
    by_id = {s.context.span_id: s for s in trace if s.context is not None}

    def under_tool(span: ReadableSpan) -> bool:  # every step descends from the tool's span
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            if span is tool:
                return True
        return False

    assert all(under_tool(s) for s in trace if s is not tool)
    for sentence in sentences:  # each sentence's engine time is inside the call's time
        assert tool.start_time is not None and tool.end_time is not None
        assert sentence.start_time is not None and sentence.end_time is not None
        assert tool.start_time <= sentence.start_time <= sentence.end_time <= tool.end_time
    assert_no_text_or_audio(trace)


async def test_a_streamed_speech_request_continues_the_header_traceparent(traced, spans):
    async with serve_http(traced) as base, httpx2.AsyncClient(timeout=60) as http:
        headers = {"traceparent": TRACEPARENT}
        async with http.stream(
            "POST", f"{base}/v1/speak/stream", json={"text": TEXT}, headers=headers
        ) as response:
            assert response.status_code == 200
            body = [line async for line in response.aiter_lines()]
    assert any(line.startswith("event: done") for line in body)
    trace = in_trace(spans)
    request = next(s for s in trace if s.name == "POST /v1/speak/stream")
    assert request.parent is not None and f"{request.parent.span_id:016x}" == PARENT_ID
    assert request.attributes is not None and request.attributes["speech.tool"] == "speak"
    assert request.attributes["enduser.id"] == traced.policy.local().id
    assert re.fullmatch(r"[0-9a-f]{16}", str(request.attributes["speech.request_id"]))
    got = names(trace)
    assert "policy" in got and got.count("synthesize sentence") >= 3  # the lead-in is a piece of its own
    assert_no_text_or_audio(trace)


async def test_openai_progressive_speech_traces_the_encoding_of_each_sentence(traced, spans):
    async with serve_http(traced) as base, httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{base}/v1/audio/speech",
            json={"model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "mp3"},
            headers={"traceparent": TRACEPARENT},
        )
    assert response.status_code == 200 and response.content
    trace = in_trace(spans)
    request = next(s for s in trace if s.name == "POST /v1/audio/speech")
    encodes = [s for s in trace if s.name == "encode"]
    sentences = [s for s in trace if s.name == "synthesize sentence"]
    assert len(encodes) == len(sentences) + 1  # each sentence as it is made, then the encoder's tail
    assert all(s.attributes is not None and s.attributes["speech.format"] == "mp3" for s in encodes)
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id for s in encodes)
    assert_no_text_or_audio(trace)


async def test_transcription_is_traced_through_decode_and_recognition(traced, spans, speak):
    from speech_backend import encode_audio

    clip = encode_audio(speak("Please call me back tomorrow morning."), "wav")
    async with serve_http(traced) as base, httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{base}/v1/audio/transcriptions",
            files={"file": ("clip.wav", clip, "audio/wav")},
            data={"model": "whisper-1"},
            headers={"traceparent": TRACEPARENT},
        )
    assert response.status_code == 200
    got = names(in_trace(spans))
    for step in ("POST /v1/audio/transcriptions", "policy", "queue recognition", "decode", "recognize"):
        assert step in got, got
    assert_no_text_or_audio(in_trace(spans))


def test_without_otel_settings_tracing_is_off_and_spans_record_nothing():
    tracing = Tracing.from_environment({})
    assert isinstance(tracing.tracer, NoOpTracer)
    with tracing.span("policy", {"enduser.id": "a"}) as span:
        assert not span.is_recording()
    assert isinstance(
        Tracing.from_environment({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}).tracer,
        NoOpTracer,
    )
    assert isinstance(
        Tracing.from_environment({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}).tracer,
        NoOpTracer,
    )


def test_an_otlp_endpoint_exports_the_spans_over_otlp_http():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, self.headers["content-type"], body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(b"")

        def log_message(self, *args: object) -> None:
            pass

    collector = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    tracing = Tracing.from_environment(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "speech"}
    )
    try:
        assert tracing.provider is not None
        with tracing.span("policy", {"enduser.id": "a"}) as span:
            assert span.is_recording()
    finally:
        tracing.shutdown()  # flushes the batch
        collector.shutdown()
        collector.server_close()
    assert [(path, kind) for path, kind, _ in received] == [("/v1/traces", "application/x-protobuf")]
    request = ExportTraceServiceRequest.FromString(received[0][2])
    resource = request.resource_spans[0]
    assert {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"] == "speech"
    assert [s.name for s in resource.scope_spans[0].spans] == ["policy"]


async def test_a_live_transcription_socket_is_one_trace_with_each_recognition(traced, spans, speak):
    import json

    import numpy as np
    from websockets.asyncio.client import connect

    from speech_backend import resample
    from tests.agent_tools.web.test_sockets import receive, ws_url

    audio = resample(speak("Please call me back tomorrow morning."), 16000)
    silence = np.zeros(16000, dtype=np.float32)
    pcm = (np.concatenate([silence, audio.samples, silence]) * 32767).astype("<i2").tobytes()
    async with (
        serve_http(traced) as base,
        connect(ws_url(base, "/v1/transcribe/ws"), additional_headers={"traceparent": TRACEPARENT}) as ws,
    ):
        assert (await receive(ws))["type"] == "ready"
        for start in range(0, len(pcm), 3200):
            await ws.send(pcm[start : start + 3200])
        await ws.send(json.dumps({"type": "end"}))
        while (await receive(ws))["type"] != "done":
            pass
    trace = in_trace(spans)
    socket = next(s for s in trace if s.name == "WS /v1/transcribe/ws")
    assert socket.parent is not None and f"{socket.parent.span_id:016x}" == PARENT_ID
    assert socket.attributes is not None and socket.attributes["enduser.id"] == traced.policy.local().id
    got = names(trace)
    assert "recognize" in got and "queue recognition" in got and "policy" in got, got
    assert_no_text_or_audio(trace)


async def test_probes_metrics_and_the_page_files_are_not_traced(traced, spans):
    async with serve_http(traced) as base, httpx2.AsyncClient(base_url=base) as http:
        for path in ("/healthz", "/readyz", "/metrics", "/", "/page/playground.js"):
            assert (await http.get(path, headers={"traceparent": TRACEPARENT})).status_code == 200
        assert (await http.get("/v1/status", headers={"traceparent": TRACEPARENT})).status_code == 200
    assert names(in_trace(spans)) == ["GET /v1/status"]
