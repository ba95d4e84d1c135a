"""The Riva speech API over gRPC, driven by NVIDIA's own client (`nvidia-riva-client`): batch and
streaming synthesis and recognition round trips, a token policy, typed statuses, health and
reflection."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
import riva.client
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from agent_tools.core.runtime import Runtime
from agent_tools.riva.server import GrpcServer
from policies import token_hash
from tests.agent_tools.conftest import runtime_with
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio

SAID = (
    "The kitchen lights are off. The front door is locked. "
    "Tomorrow will be sunny with a light breeze from the west."
)


@asynccontextmanager
async def grpc_server(runtime: Runtime) -> AsyncIterator[str]:
    """The runtime's gRPC listener on a free loopback port; yields its address."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(GrpcServer(runtime, port=0).serve)
        yield f"127.0.0.1:{port}"
        tg.cancel_scope.cancel()


def chunks(pcm: bytes, size: int = 3200, pace: float = 0.0) -> Iterator[bytes]:
    """`pcm` in pieces of `size` bytes, each `pace` seconds after the one before (as a microphone
    would give them)."""
    for at in range(0, len(pcm), size):
        time.sleep(pace)
        yield pcm[at : at + size]


def status_error(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    """The status code, message, and our error code from the status details."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, exc
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return exc.code(), status.message, info.reason


async def test_synthesize_then_offline_recognize_round_trips_with_word_offsets(runtime):
    async with grpc_server(runtime) as address:

        def run() -> tuple[Any, Any]:
            auth = riva.client.Auth(uri=address)
            spoken = riva.client.SpeechSynthesisService(auth).synthesize(
                SAID, sample_rate_hz=16000, enable_word_time_offsets=True
            )
            config = riva.client.RecognitionConfig(
                encoding=riva.client.AudioEncoding.LINEAR_PCM,
                sample_rate_hertz=16000,
                language_code="en-US",
                enable_word_time_offsets=True,
                audio_channel_count=1,
            )
            return spoken, riva.client.ASRService(auth).offline_recognize(spoken.audio, config)

        spoken, heard = await anyio.to_thread.run_sync(run)
    words = [w for w in spoken.meta.words]
    assert len(words) == len(SAID.split()) and words[0].word == "The"
    assert all(a.start_time <= b.start_time for a, b in zip(words, words[1:], strict=False))
    text = " ".join(r.alternatives[0].transcript for r in heard.results)
    assert normalized_wer([SAID], [text]) <= 0.15, text
    heard_words = [w for r in heard.results for w in r.alternatives[0].words]
    assert len(heard_words) >= len(SAID.split()) - 2 and heard_words[-1].end_time > 3000


async def test_synthesize_online_is_progressive_and_streaming_recognition_gives_interims_then_finals(runtime):
    async with grpc_server(runtime) as address:

        def run() -> tuple[list[float], bytes, list[tuple[bool, str]]]:
            auth = riva.client.Auth(uri=address)
            started, arrivals, audio = time.perf_counter(), [], b""
            for response in riva.client.SpeechSynthesisService(auth).synthesize_online(
                SAID, sample_rate_hz=16000
            ):
                arrivals.append(time.perf_counter() - started)
                audio += response.audio
            config = riva.client.StreamingRecognitionConfig(
                config=riva.client.RecognitionConfig(
                    encoding=riva.client.AudioEncoding.LINEAR_PCM,
                    sample_rate_hertz=16000,
                    language_code="en-US",
                    audio_channel_count=1,
                ),
                interim_results=True,
            )
            asr = riva.client.ASRService(auth)
            paced = chunks(audio + b"\0" * 32000, pace=0.1)  # 100 ms of 16 kHz audio every 100 ms
            results = [
                (result.is_final, result.alternatives[0].transcript)
                for response in asr.streaming_response_generator(paced, config)
                for result in response.results
            ]
            return arrivals, audio, results

        arrivals, audio, results = await anyio.to_thread.run_sync(run)
    assert len(arrivals) >= 3 and arrivals[0] < arrivals[-1] / 2  # the first chunk well before the last
    finals = [text for final, text in results if final]
    assert any(not final for final, _ in results)  # interim results
    assert results[-1][0] and normalized_wer([SAID], [" ".join(finals)]) <= 0.15, results


async def test_a_token_policy_is_enforced_as_over_http(service, settings, tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: 1\nprincipals:\n  - id: alice\n    token_sha256: [{token_hash('alice-token')}]\n"
    )
    runtime = runtime_with(service, settings.model_copy(update={"policy_file": policy}))
    try:
        async with grpc_server(runtime) as address:

            def attempt(token: str | None) -> grpc.StatusCode | int:
                metadata = [["authorization", f"Bearer {token}"]] if token else None
                auth = riva.client.Auth(uri=address, metadata_args=metadata)
                try:
                    return len(riva.client.SpeechSynthesisService(auth).synthesize("Hello.").audio)
                except grpc.RpcError as exc:
                    return status_error(exc)[0]

            outcomes = [
                await anyio.to_thread.run_sync(attempt, t) for t in (None, "wrong-token", "alice-token")
            ]
    finally:
        runtime.policy.close()
    assert outcomes[:2] == [grpc.StatusCode.UNAUTHENTICATED] * 2
    assert isinstance(outcomes[2], int) and outcomes[2] > 10_000
    registry = runtime.metrics.registry  # counted like every surface's calls
    assert registry.get_sample_value("speech_tool_calls_total", {"tool": "speak", "outcome": "ok"}) == 1
    assert (
        registry.get_sample_value("speech_tool_errors_total", {"tool": "speak", "code": "unauthorized"}) == 2
    )


async def test_the_same_bad_request_gets_the_same_code_and_message_as_over_http(runtime):
    import httpx2

    from tests.agent_tools.conftest import serve_http

    cases: list[dict[str, Any]] = [{"sample_rate_hz": 7999}, {"voice_name": "no-such-voice"}]
    async with grpc_server(runtime) as address, serve_http(runtime) as base:
        for case in cases:

            def call(case: dict[str, Any] = case) -> tuple[grpc.StatusCode, str, str]:
                service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
                try:
                    service.synthesize("Hello there.", **{"sample_rate_hz": 22050, **case})
                except grpc.RpcError as exc:
                    return status_error(exc)
                raise AssertionError("not refused")

            status, message, code = await anyio.to_thread.run_sync(call)
            body = {"input": "Hello there.", "model": "tts-1"}
            if "voice_name" in case:
                body["voice"] = case["voice_name"]
            else:
                body["sample_rate"] = case["sample_rate_hz"]
            async with httpx2.AsyncClient() as http:
                error = (await http.post(f"{base}/v1/audio/speech", json=body)).json()["error"]
            assert (code, message) == (error["code"], error["message"])
            expected = grpc.StatusCode.NOT_FOUND if "voice_name" in case else grpc.StatusCode.INVALID_ARGUMENT
            assert status == expected


async def test_health_says_serving_and_reflection_lists_the_riva_services(runtime):
    async with grpc_server(runtime) as address:

        def run() -> tuple[int, set[str]]:
            with grpc.insecure_channel(address) as channel:
                health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([request])
                )
                names = {s.name for a in answers for s in a.list_services_response.service}
            return health.status, names

        with anyio.fail_after(30):
            while True:  # the health poll runs every second
                status, names = await anyio.to_thread.run_sync(run)
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
                await anyio.sleep(0.2)
    assert {
        "nvidia.riva.tts.RivaSpeechSynthesis",
        "nvidia.riva.asr.RivaSpeechRecognition",
        "grpc.health.v1.Health",
    } <= names


def test_busy_is_resource_exhausted_with_the_retry_delay_in_the_details():
    from agent_tools.riva.calls import status_of

    status = status_of(
        {"code": "busy", "message": "full", "retryable": True, "retry_after_ms": 1500, "request_id": "r"}
    )
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED and status.details == "full"
    retry = error_details_pb2.RetryInfo()
    from google.rpc import status_pb2

    packed = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    assert (
        packed.details[1].Unpack(retry)
        and retry.retry_delay.seconds == 1
        and retry.retry_delay.nanos == 500_000_000
    )


async def test_a_cancelled_synthesize_online_stops_the_engine_work(runtime):
    long_text = " ".join(f"This is sentence number {n} of a long reading." for n in range(40))
    async with grpc_server(runtime) as address:

        def first_then_cancel() -> int:
            service = riva.client.SpeechSynthesisService(riva.client.Auth(uri=address))
            responses = service.synthesize_online(long_text, sample_rate_hz=16000)
            first = next(responses)
            responses.cancel()  # the listener leaves after the first sentence
            return len(first.audio)

        assert await anyio.to_thread.run_sync(first_then_cancel) > 0
        scheduler = runtime.scheduler
        with anyio.fail_after(10):  # the call's work ends at the next sentence: nothing left in flight
            while scheduler.in_flight or scheduler.sentences.in_use:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        made = sentences_made(runtime)
        await anyio.sleep(1.0)
        assert sentences_made(runtime) == made  # and none is made after
    assert 1 <= made < 10  # of the 40 asked for


def sentences_made(runtime: Runtime) -> float:
    """Sentences that went through a synthesis slot (each waits for one, however briefly)."""
    registry = runtime.metrics.registry
    count = registry.get_sample_value("speech_engine_queue_wait_seconds_count", {"engine": "sentences"})
    return count or 0.0
