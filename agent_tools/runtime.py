"""What every surface shares: settings, the service once its models load, the audio store, metrics."""

from __future__ import annotations

import logging
import uuid

from agent_tools.audio_store import AudioStore
from agent_tools.metrics import Metrics
from agent_tools.service import SpeechService
from agent_tools.settings import Settings
from speech_backend import BackendUnavailable

logger = logging.getLogger(__name__)


class Runtime:
    """The shared state of one server process, passed to every surface that needs it."""

    def __init__(self, settings: Settings, service: SpeechService | None = None) -> None:
        self.settings = settings
        self.metrics = service.metrics if service is not None else Metrics()
        self.service = service
        self.load_error: str | None = None
        self.calls_in_flight = 0
        cfg = settings.service
        self.store = AudioStore(
            cfg.audio_store_max_items, cfg.audio_store_max_bytes, cfg.audio_store_ttl_seconds
        )

    def load(self) -> None:
        """Load the models (blocking); on failure the server stays live but not ready."""
        try:
            service = SpeechService.from_settings(self.settings)
        except Exception as exc:  # any failure here must leave a live server that says why it is not ready
            self.load_error = getattr(exc, "code", "internal")
            logger.error("models failed to load", exc_info=exc)
            return
        service.metrics = self.metrics
        self.service = service
        logger.info("models loaded; ready")

    def require(self) -> SpeechService:
        """The service, or `backend_unavailable` while models load or after they failed."""
        if self.service is None:
            why = (
                "failed to load; see the server log"
                if self.load_error
                else "still loading; retry in a few seconds"
            )
            raise BackendUnavailable(f"the speech models are {why}")
        return self.service


def new_request_id() -> str:
    """A short id that ties a result, an error and log lines together."""
    return uuid.uuid4().hex[:16]
