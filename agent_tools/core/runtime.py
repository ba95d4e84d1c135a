"""Everything one server process shares, built once and never rewired. Which engines (here or a
pool) and which stores (memory, SQLite, Redis) it runs with is decided above core
(`agent_tools.assembly`) and handed in; by default: engines loaded here, stores in this process."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread

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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stores:
    """Where what outlives a call is kept: `audio://` clips and socket tickets (the quota counters
    are the policy's)."""

    audio: AudioStore
    tickets: SocketTickets

    @classmethod
    def in_process(cls, settings: Settings) -> Stores:
        """Both in this process's memory, bounded by the settings."""
        cfg = settings.service
        bounds = (cfg.audio_store_max_items, cfg.audio_store_max_bytes, cfg.audio_store_ttl_seconds)
        return cls(MemoryAudioStore(*bounds), MemorySocketTickets(settings.server.socket_ticket_seconds))


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
    loader: Callable[[], Engines]  # how `load` gets the engines (here, or a pool's)

    @classmethod
    def build(
        cls,
        settings: Settings,
        engines: Engines | None = None,
        policy: Policy | None = None,
        tracing: Tracing | None = None,
        *,
        stores: Stores | None = None,
        loader: Callable[[], Engines] | None = None,
    ) -> Runtime:
        """The runtime of `settings`: over `engines` when given, else engines still to `load` (with
        `loader`, by default loaded in this process); under `policy` when given, else the settings'
        policy file (or the default local policy); with `stores` (by default in this process);
        traced to `tracing` when given, else as the `OTEL_*` environment says (off when it says
        nothing).

        Raises:
            PolicyFileError: the policy file is invalid.
            AuditFileError: the audit file cannot be opened.
            LexiconError: the lexicon file is invalid (its line named).
        """
        if engines is None and settings.engines.lexicon_file is not None:
            parse_lexicon(settings.engines.lexicon_file)  # refused at start-up, not when models load
        cfg = settings.service
        policy = policy or build_policy(settings)
        stores = stores or Stores.in_process(settings)
        metrics = Metrics()
        state = EngineState(engines)
        tracing = tracing or Tracing.from_environment(os.environ)
        scheduler = Scheduler(cfg, metrics, tracing)
        service = SpeechService(state, cfg, policy, metrics, stores.audio, scheduler)
        streams = SpeechStreams(service)
        loader = loader or (lambda: Engines.load(settings.engines))
        return cls(
            settings,
            policy,
            metrics,
            stores.audio,
            state,
            scheduler,
            service,
            streams,
            stores.tickets,
            tracing,
            loader,
        )

    def load(self) -> None:
        """Load every model (blocking); on failure the server stays live but not ready."""
        self.engines.load(self.loader)

    async def load_in_thread(self) -> None:
        """`load`, off the event loop (a server answers probes meanwhile)."""
        await anyio.to_thread.run_sync(self.load)

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


def build_policy(settings: Settings, quotas: QuotaStore | None = None) -> Policy:
    """The policy of the settings' policy file (or the default local one), with its stores: quota
    counters in `quotas` when given (shared by every front-end), else in the file's SQLite database
    or in memory.

    Raises:
        PolicyFileError: the file is invalid (the message names the line).
    """
    config = load_policy(settings.policy_file) if settings.policy_file else PolicyConfig()
    store: QuotaStore
    if quotas is not None:
        store = quotas
    elif config.quota_db:
        store = SqliteQuotaStore(config.quota_db)
    else:
        store = MemoryQuotaStore()
    audit: AuditSink | None = None
    if config.audit.path is not None:
        audit = RotatingFileAuditSink(config.audit.path, config.audit.max_bytes, config.audit.backups)
    return Policy(config, store=store, audit=audit)
