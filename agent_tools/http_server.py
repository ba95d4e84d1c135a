"""Serving the app with uvicorn, draining tool calls on SIGTERM before connections close."""

from __future__ import annotations

import logging
import threading
import time
from types import FrameType

import uvicorn

from agent_tools.app import build_app
from agent_tools.runtime import Runtime

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
        if self.runtime.service is not None:
            self.runtime.service.shutdown()
        threading.Thread(target=self._drain_then_exit, args=(sig,), daemon=True, name="drain").start()

    def _drain_then_exit(self, sig: int) -> None:
        deadline = time.monotonic() + self.runtime.settings.server.drain_seconds
        logger.info("draining", extra={"calls_in_flight": self.runtime.calls_in_flight})
        while self.runtime.calls_in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.runtime.calls_in_flight:
            logger.warning("drain deadline passed", extra={"calls_in_flight": self.runtime.calls_in_flight})
        else:
            time.sleep(RESPONSE_GRACE_SECONDS)
        self.should_exit = True  # a drained shutdown is a clean exit (status 0), not death by signal


def serve(runtime: Runtime) -> None:
    """Serve HTTP on the configured host and port until a signal ends it (blocking)."""
    server = runtime.settings.server
    config = uvicorn.Config(
        build_app(runtime),
        host=server.host,
        port=server.port,
        log_config=None,
        timeout_graceful_shutdown=max(1, int(server.drain_seconds)),
    )
    DrainingServer(config, runtime).run()
