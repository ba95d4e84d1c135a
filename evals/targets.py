"""Where scenarios run: a server already running (by URL), or servers started in this process on
loopback over engines loaded once — one per policy a scenario asks for."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import anyio.abc
import uvicorn

from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime
from agent_tools.settings import Settings
from agent_tools.web.http_server import uvicorn_config
from evals.scenario import Scenario
from policies import Policy, PolicyConfig


class Target(Protocol):
    """Gives each scenario the base URL to run against, or why it cannot run there."""

    name: str

    async def base_url(self, scenario: Scenario) -> str:
        """The server for `scenario`.

        Raises:
            Unsupported: the scenario cannot run on this target (the message says why).
        """
        ...

    token: str | None


class Unsupported(Exception):
    """The scenario needs something this target cannot give."""


class RemoteTarget:
    """A server already running; scenarios that bring their own policy are skipped."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/").removesuffix("/mcp")
        self.name = self.url
        self.token = token

    async def base_url(self, scenario: Scenario) -> str:
        """The server's base URL."""
        if scenario.policy is not None:
            raise Unsupported("brings its own policy: runs in-process only")
        return self.url


class InProcessTarget:
    """Servers on loopback in this process, sharing one set of loaded engines."""

    token: str | None = None

    def __init__(self, settings: Settings, engines: Engines, tg: anyio.abc.TaskGroup) -> None:
        self.settings = settings
        self.engines = engines
        self.name = "in-process"
        self._tg = tg
        self._servers: dict[str, str] = {}
        self._running: list[tuple[uvicorn.Server, anyio.Event]] = []
        self._lock = anyio.Lock()

    @classmethod
    @asynccontextmanager
    async def start(
        cls, settings: Settings, engines: Engines | None = None
    ) -> AsyncIterator[InProcessTarget]:
        """Load the engines (unless given) and serve on demand until the block ends."""
        if engines is None:
            engines = await anyio.to_thread.run_sync(lambda: Engines.load(settings.engines))
        async with anyio.create_task_group() as tg:
            target = cls(settings, engines, tg)
            try:
                yield target
            finally:
                await target._stop()

    async def _stop(self) -> None:
        """Let every server shut down on its own (lifespan included); cut them off after 10 s."""
        for server, _ in self._running:
            server.should_exit = True
        with anyio.move_on_after(10) as scope:
            for _, stopped in self._running:
                await stopped.wait()
        if scope.cancelled_caught:
            self._tg.cancel_scope.cancel()

    async def base_url(self, scenario: Scenario) -> str:
        """A server under the scenario's policy (the default policy when it has none)."""
        key = json.dumps(scenario.policy, sort_keys=True)
        async with self._lock:
            if key not in self._servers:
                self._servers[key] = await self._serve(scenario.policy)
        return self._servers[key]

    async def _serve(self, policy: dict[str, Any] | None) -> str:
        config = PolicyConfig.model_validate(policy) if policy is not None else PolicyConfig()
        runtime = Runtime.build(self.settings, self.engines, policy=Policy(config))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(runtime, lifespan="on"))
        stopped = anyio.Event()
        self._running.append((server, stopped))

        async def serve() -> None:
            try:
                await server.serve([sock])
            finally:
                stopped.set()

        self._tg.start_soon(serve)
        with anyio.fail_after(30):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no start event
                await anyio.sleep(0.01)
        return f"http://127.0.0.1:{port}"
