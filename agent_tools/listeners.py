"""Every listener of `speech-tools serve` in one event loop: HTTP (uvicorn, draining on SIGTERM)
and, when configured, Wyoming; when HTTP has drained and stops, the others stop with it."""

from __future__ import annotations

import asyncio

import anyio

from agent_tools.core.runtime import Runtime
from agent_tools.web.http_server import DrainingServer, uvicorn_config
from agent_tools.wyoming.server import WyomingServer


def serve(runtime: Runtime) -> None:
    """Serve until a signal ends it (blocking).

    Raises:
        ValueError: a listener's settings are unsafe or invalid (the message says which).
    """
    wyoming = WyomingServer(runtime) if runtime.settings.server.wyoming_port is not None else None
    http = DrainingServer(uvicorn_config(runtime), runtime)
    if wyoming is None:
        http.run()  # (uvicorn's own event loop)
    else:
        asyncio.run(_serve(http, wyoming))


async def _serve(http: DrainingServer, wyoming: WyomingServer | None) -> None:
    async with anyio.create_task_group() as tg:
        if wyoming is not None:
            await tg.start(wyoming.serve)
        await http.serve()
        tg.cancel_scope.cancel()
