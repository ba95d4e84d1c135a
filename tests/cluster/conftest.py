"""Fixtures for the multi-front-end tests: a real redis-server, and front-ends that share it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_tools.assembly import assemble
from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime
from agent_tools.settings import ServiceSettings, Settings, StateSettings
from speech_backend import EngineSettings
from tests.cluster.redis_server import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def front_end(
    engines: Engines,
    engine_settings: EngineSettings,
    redis_url: str,
    policy_file: Path | None = None,
    redis_timeout: float = 1.0,
) -> Runtime:
    """One stateless front-end over the shared engines, its clips and quotas in Redis."""
    settings = Settings(
        engines=engine_settings,
        service=ServiceSettings(deterministic_speech=True),
        state=StateSettings(redis_url=redis_url, redis_timeout_seconds=redis_timeout),
        policy_file=policy_file,
    )
    return assemble(settings, engines)
