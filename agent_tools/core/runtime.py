"""The composition root: everything one server process shares, built once and never rewired."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_tools.core.audio_store import AudioStore, MemoryAudioStore
from agent_tools.core.engines import Engines, EngineState
from agent_tools.core.metrics import Metrics
from agent_tools.core.scheduler import Scheduler
from agent_tools.core.service import SpeechService
from agent_tools.core.socket_tickets import MemorySocketTickets, SocketTickets
from agent_tools.core.streams import SpeechStreams
from agent_tools.core.tracing import Tracing
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
from speech_backend.lexicon import parse as parse_lexicon

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """The shared state of one server process, passed to every surface that needs it."""

    settings: Settings
    policy: Policy
    metrics: Metrics
    store: AudioStore
    engines: EngineState
    scheduler: Scheduler
    service: SpeechService
    streams: SpeechStreams
    tickets: SocketTickets
    tracing: Tracing

    @classmethod
    def build(
        cls,
        settings: Settings,
        engines: Engines | None = None,
        policy: Policy | None = None,
        tracing: Tracing | None = None,
    ) -> Runtime:
        """The runtime of `settings`: over `engines` when given, else engines still to `load`; under
        `policy` when given, else the settings' policy file (or the default local policy); traced
        to `tracing` when given, else as the `OTEL_*` environment says (off when it says nothing).

        Raises:
            PolicyFileError: the policy file is invalid.
            AuditFileError: the audit file cannot be opened.
            LexiconError: the lexicon file is invalid (its line named).
        """
        if engines is None and settings.engines.lexicon_file is not None:
            parse_lexicon(settings.engines.lexicon_file)  # refused at start-up, not when models load
        cfg = settings.service
        shared = redis_client(settings)
        policy = policy or build_policy(settings, shared)
        metrics = Metrics()
        store = build_audio_store(settings, shared)
        state = EngineState(engines)
        tracing = tracing or Tracing.from_environment(os.environ)
        scheduler = Scheduler(cfg, metrics, tracing)
        service = SpeechService(state, cfg, policy, metrics, store, scheduler)
        tickets = build_socket_tickets(settings, shared)
        streams = SpeechStreams(service)
        return cls(settings, policy, metrics, store, state, scheduler, service, streams, tickets, tracing)

    def load(self) -> None:
        """Load every model (blocking); on failure the server stays live but not ready."""
        cluster = self.settings.cluster
        if cluster.engines == "ray":
            address, timeout = cluster.ray_address, cluster.connect_timeout_seconds
            self.engines.load(lambda: Engines.remote(self.settings.engines, address, timeout))
        else:
            self.engines.load(lambda: Engines.load(self.settings.engines))

    @property
    def ready(self) -> bool:
        """Every model loaded (voice, recognizer, voice activity) and the audit trail writable."""
        return self.engines.loaded is not None and self.policy.audit_writable

    @property
    def work_in_flight(self) -> int:
        """Calls and engine work of every surface (streams and sockets included)."""
        return self.scheduler.in_flight

    @property
    def auth_required(self) -> bool:
        """True when HTTP callers must present a bearer token (the policy gives principals tokens)."""
        return self.policy.config.has_tokens

    def reload(self) -> None:
        """SIGHUP: read the policy file and the lexicon again (each keeps its version on an error)."""
        self.reload_policy()
        engines = self.engines.loaded
        if engines is not None and engines.lexicon is not None:
            try:
                engines.lexicon.reload()
                logger.info("lexicon reloaded", extra={"entries": len(engines.lexicon)})
            except ValueError as exc:
                logger.error("lexicon reload failed; keeping the lexicon in force", extra={"error": str(exc)})

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


def new_request_id() -> str:
    """A short id that ties a result, an error and log lines together."""
    return uuid.uuid4().hex[:16]


def redis_client(settings: Settings) -> Redis | None:
    """One client (one connection pool) for every store kept in Redis, when Redis is configured;
    Redis is imported only then."""
    state = settings.state
    if state.redis_url is None:
        return None
    import redis

    timeout = state.redis_timeout_seconds
    return redis.Redis.from_url(state.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)


def build_socket_tickets(settings: Settings, shared: Redis | None = None) -> SocketTickets:
    """Socket tickets: in this process, or in `shared` Redis (redeemable on any front-end)."""
    ttl = settings.server.socket_ticket_seconds
    if shared is None:
        return MemorySocketTickets(ttl)
    from agent_tools.core.redis_socket_tickets import RedisSocketTickets

    return RedisSocketTickets(shared, ttl, settings.state.key_prefix)


def build_policy(settings: Settings, shared: Redis | None = None) -> Policy:
    """The policy of the settings' policy file (or the default local one), with its stores: quota
    counters in `shared` Redis when given.

    Raises:
        PolicyFileError: the file is invalid (the message names the line).
    """
    config = load_policy(settings.policy_file) if settings.policy_file else PolicyConfig()
    store: QuotaStore
    if shared is not None:  # shared by every front-end
        from policies.redis_quota_store import RedisQuotaStore

        store = RedisQuotaStore(shared, settings.state.key_prefix)
    elif config.quota_db:
        store = SqliteQuotaStore(config.quota_db)
    else:
        store = MemoryQuotaStore()
    audit: AuditSink | None = None
    if config.audit.path is not None:
        audit = RotatingFileAuditSink(config.audit.path, config.audit.max_bytes, config.audit.backups)
    return Policy(config, store=store, audit=audit)


def build_audio_store(settings: Settings, shared: Redis | None = None) -> AudioStore:
    """The `audio://` store: in this process, or in `shared` Redis when given."""
    cfg = settings.service
    bounds = (cfg.audio_store_max_items, cfg.audio_store_max_bytes, cfg.audio_store_ttl_seconds)
    if shared is None:
        return MemoryAudioStore(*bounds)
    from agent_tools.core.redis_audio_store import RedisAudioStore

    return RedisAudioStore(shared, *bounds, settings.state.key_prefix)
