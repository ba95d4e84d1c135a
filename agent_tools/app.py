"""The ASGI application: health and readiness now; the MCP and speech routes mount here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent_tools.service import SpeechService
from agent_tools.settings import Settings
from speech_backend import SpeechError

logger = logging.getLogger(__name__)


class Readiness:
    """Holds the service once the models have loaded, and why not when they failed."""

    def __init__(self) -> None:
        self.service: SpeechService | None = None
        self.error: str | None = None


def build_app(settings: Settings, service: SpeechService | None = None) -> Starlette:
    """The app; with no `service` given, the models load in the background at start-up."""
    state = Readiness()
    state.service = service

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.service is None:
            try:
                state.service = await anyio.to_thread.run_sync(SpeechService.from_settings, settings)
                logger.info("models loaded; ready")
            except SpeechError as exc:
                state.error = exc.code
                logger.error("models failed to load: %s", exc.message)
        yield

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if state.service is None:
            body = {"status": "not_ready", "reason": state.error or "loading"}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "recognizer": state.service.recognizer.model_id})

    routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    return Starlette(routes=routes, lifespan=lifespan)
