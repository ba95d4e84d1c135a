"""What every surface shares: settings, the service once its models load, the audio store, metrics."""

from __future__ import annotations

import logging
import uuid

from agent_tools.core.audio_store import AudioStore
from agent_tools.core.metrics import Metrics
from agent_tools.core.service import SpeechService
from agent_tools.settings import Settings
from policies import (
    AuditSink,
    MemoryQuotaStore,
    Policy,
    PolicyConfig,
    QuotaStore,
    RotatingFileAuditSink,
    SqliteQuotaStore,
    load_policy,
)
from speech_backend import BackendUnavailable

logger = logging.getLogger(__name__)


class Runtime:
    """The shared state of one server process, passed to every surface that needs it."""

    def __init__(
        self, settings: Settings, service: SpeechService | None = None, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.metrics = service.metrics if service is not None else Metrics()
        self.policy = policy or (service.policy if service is not None else build_policy(settings))
        if service is not None:
            service.policy = self.policy
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
            service = SpeechService.from_settings(self.settings, policy=self.policy)
        except Exception as exc:  # any failure here must leave a live server that says why it is not ready
            self.load_error = getattr(exc, "code", "internal")
            logger.error("models failed to load", exc_info=exc)
            return
        service.metrics = self.metrics
        self.service = service
        logger.info("models loaded; ready")

    @property
    def work_in_flight(self) -> int:
        """MCP tool calls running, and engine work of any surface (streams and sockets included)."""
        return self.calls_in_flight + (self.service.in_flight if self.service is not None else 0)

    @property
    def auth_required(self) -> bool:
        """True when HTTP callers must present a bearer token (the policy gives principals tokens)."""
        return self.policy.config.has_tokens

    def reload_policy(self) -> bool:
        """Re-read the policy file (SIGHUP); on any error keep the policy in force. True when reloaded."""
        path = self.settings.policy_file
        if path is None:
            return False
        try:
            config = load_policy(path)
        except ValueError as exc:
            logger.error("policy reload failed; keeping the policy in force", extra={"error": str(exc)})
            return False
        if config.has_tokens != self.policy.config.has_tokens:
            # MCP's bearer authentication is set up at start-up: turning tokens off (or on) by a
            # reload would leave the surfaces disagreeing about who may call, or open them all.
            change = "off" if self.policy.config.has_tokens else "on"
            logger.error(
                f"policy reload refused: it would turn bearer authentication {change}; restart the server "
                "to do that. Keeping the policy in force"
            )
            return False
        self.policy.reload(config)
        logger.info("policy reloaded", extra={"principals": len(config.principals)})
        return True

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


def build_policy(settings: Settings) -> Policy:
    """The policy of the settings' policy file (or the default local one), with its stores.

    Raises:
        PolicyFileError: the file is invalid (the message names the line).
    """
    config = load_policy(settings.policy_file) if settings.policy_file else PolicyConfig()
    store: QuotaStore = SqliteQuotaStore(config.quota_db) if config.quota_db else MemoryQuotaStore()
    audit: AuditSink | None = None
    if config.audit.path is not None:
        audit = RotatingFileAuditSink(config.audit.path, config.audit.max_bytes, config.audit.backups)
    return Policy(config, store=store, audit=audit)
