"""Fixtures for the eval suite: the scenario folder, the dev set, and deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_tools.settings import ServiceSettings, Settings

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "evals" / "scenarios"


@pytest.fixture(scope="session")
def devset() -> Path:
    """The dev set `make devset` fetched (make test fetches it first)."""
    return Path(os.environ.get("SPEECH_TOOLS_DEVSET", REPO / ".cache" / "devset"))


@pytest.fixture
def builtins(devset: Path) -> dict[str, str]:
    return {"devset": str(devset)}


@pytest.fixture
def settings(engine_settings) -> Settings:
    return Settings(engines=engine_settings, service=ServiceSettings(deterministic_speech=True))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
