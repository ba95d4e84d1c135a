"""Every listener of `speech-tools serve` in one event loop: HTTP (uvicorn, draining on SIGTERM),
gRPC (the Riva speech API) unless turned off, and Wyoming when configured; when HTTP has drained
and stops, the others stop with it."""

from __future__ import annotations

import asyncio

import anyio

from agent_tools.core.errors import unwrap
from agent_tools.core.runtime import Runtime
from agent_tools.riva.server import GrpcServer
from agent_tools.web.http_server import DrainingServer, uvicorn_config
from agent_tools.wyoming.server import WyomingServer


def serve(runtime: Runtime) -> None:
    """Serve until a signal ends it (blocking).

    Raises:
        ValueError: a listener's settings are unsafe or invalid, or its port is taken (the message
            says which).
    """
    settings = runtime.settings.server
    others: list[GrpcServer | WyomingServer] = []
    if settings.grpc_port != "off":
        others.append(GrpcServer(runtime))
    if settings.wyoming_port is not None:
        others.append(WyomingServer(runtime))
    http = DrainingServer(uvicorn_config(runtime), runtime)
    if not others:
        http.run()  # (uvicorn's own event loop)
        return
    try:
        with asyncio.Runner(loop_factory=http.config.get_loop_factory()) as runner:  # uvicorn's loop
            runner.run(_serve(http, others))
    except BaseExceptionGroup as group:
        failure = unwrap(group)
        if isinstance(failure, ValueError | OSError):
            raise ValueError(str(failure)) from failure
        raise


async def _serve(http: DrainingServer, others: list[GrpcServer | WyomingServer]) -> None:
    async with anyio.create_task_group() as tg:
        for listener in others:
            await tg.start(listener.serve)
        await http.serve()
        tg.cancel_scope.cancel()
