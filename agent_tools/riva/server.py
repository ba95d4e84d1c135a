"""The gRPC listener: the Riva TTS and ASR services, the standard health service (SERVING once
the server is ready, NOT_SERVING while loading and while draining) and server reflection, on the
HTTP host (loopback by default) and `SERVER__GRPC_PORT`; received messages bounded by
`SERVER__GRPC_MAX_MESSAGE_BYTES`."""

from __future__ import annotations

import logging

import anyio
import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_tts_pb2 as rtts
import riva.client.proto.riva_tts_pb2_grpc as rtts_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from agent_tools.core.runtime import Runtime
from agent_tools.riva.asr import Recognition
from agent_tools.riva.calls import Calls
from agent_tools.riva.tts import Synthesis

logger = logging.getLogger(__name__)

SERVICES = (
    rtts.DESCRIPTOR.services_by_name["RivaSpeechSynthesis"].full_name,
    rasr.DESCRIPTOR.services_by_name["RivaSpeechRecognition"].full_name,
)
SEND_BYTES = 64 * 1024 * 1024  # a whole utterance's audio in one Synthesize response
HEALTH_POLL_SECONDS = 1.0


class GrpcServer:
    """The Riva speech API over one runtime."""

    def __init__(self, runtime: Runtime, port: int | None = None) -> None:
        self.runtime = runtime
        setting = runtime.settings.server.grpc_port
        self.port = port if port is not None else (0 if setting == "off" else setting)  # (off: not started)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled (then stop, letting calls in flight end within a second); the
        port goes to `task_status`.

        Raises:
            ValueError: the port cannot be bound (in use).
        """
        settings = self.runtime.settings.server
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
                ("grpc.max_send_message_length", SEND_BYTES),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
            ]
        )
        calls = Calls(self.runtime)
        rtts_grpc.add_RivaSpeechSynthesisServicer_to_server(Synthesis(self.runtime, calls), server)
        rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(Recognition(self.runtime, calls), server)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        try:
            port = server.add_insecure_port(f"{_host(settings.host)}:{self.port}")
        except RuntimeError as exc:
            raise ValueError(
                f"gRPC cannot listen on port {self.port} ({exc}); set SPEECH_TOOLS_SERVER__GRPC_PORT"
            ) from exc
        await server.start()
        logger.info("serving grpc", extra={"host": settings.host, "port": port})
        task_status.started(port)
        try:
            while True:
                await _set(health, self._status())
                await anyio.sleep(HEALTH_POLL_SECONDS)
        finally:
            with anyio.CancelScope(shield=True):
                await _set(health, health_pb2.HealthCheckResponse.NOT_SERVING)
                await server.stop(1.0)

    def _status(self) -> int:
        serving = self.runtime.ready and not self.runtime.scheduler.closed
        status: int = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        return status


async def _set(health: health_aio.HealthServicer, status: int) -> None:
    for service in ("", *SERVICES):
        await health.set(service, status)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
