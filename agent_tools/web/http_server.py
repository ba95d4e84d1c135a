"""Serving the app with uvicorn, draining tool calls on SIGTERM before connections close."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from agent_tools.core.runtime import Runtime
from agent_tools.web.app import build_app

logger = logging.getLogger(__name__)

# After the last call returns, time for its response to be written before connections close.
RESPONSE_GRACE_SECONDS = 1.0


class DrainingServer(uvicorn.Server):
    """A uvicorn server that, on the first SIGTERM or SIGINT, stops admitting work, waits for the
    calls in flight (up to the drain deadline), and only then shuts down; a second signal is at once."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining; on a second signal, exit now."""
        if self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self.runtime.scheduler.shutdown()
        threading.Thread(target=self._drain_then_exit, args=(sig,), daemon=True, name="drain").start()

    def _drain_then_exit(self, sig: int) -> None:
        deadline = time.monotonic() + self.runtime.settings.server.drain_seconds
        logger.info("draining", extra={"calls_in_flight": self.runtime.work_in_flight})
        while self.runtime.work_in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.runtime.work_in_flight:
            logger.warning("drain deadline passed", extra={"calls_in_flight": self.runtime.work_in_flight})
        else:
            time.sleep(RESPONSE_GRACE_SECONDS)
        self.should_exit = True  # a drained shutdown is a clean exit (status 0), not death by signal


def uvicorn_config(runtime: Runtime, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of the app over `runtime` (tests pass `lifespan` and the like)."""
    server = runtime.settings.server
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "log_config": None,
        "timeout_graceful_shutdown": max(1, int(server.drain_seconds)),
        "http": header_timeout_protocol(server.header_timeout_seconds),
        **overrides,
    }
    return uvicorn.Config(build_app(runtime), **options)


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers take over `seconds` to
    arrive (a client that connects and sends nothing, or sends its headers byte by byte)."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._watch_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_watching()
            super().connection_lost(exc)

        def _watch_headers(self) -> None:
            """Arm the timer while the next request's headers are awaited; disarm once they are in."""
            if self.conn.their_state is h11.IDLE:
                if self._header_timer is None:
                    self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)
            else:
                self._stop_watching()

        def _stop_watching(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def serve(runtime: Runtime) -> None:
    """Serve HTTP on the configured host and port until a signal ends it (blocking)."""
    DrainingServer(uvicorn_config(runtime), runtime).run()
