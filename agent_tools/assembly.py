"""The composition root: which engines (loaded here, or the Ray Serve pool) and which stores (memory
and SQLite, or Redis shared by every front-end) a server runs with, decided once from the settings.
Core sees only the protocols; the Redis and pool adapters live in `agent_tools.cluster`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agent_tools.core.engines import Engines
from agent_tools.core.runtime import Runtime, Stores, build_policy
from agent_tools.core.tracing import Tracing
from agent_tools.settings import Settings
from policies import Policy

if TYPE_CHECKING:
    from redis import Redis


def assemble(
    settings: Settings,
    engines: Engines | None = None,
    policy: Policy | None = None,
    tracing: Tracing | None = None,
) -> Runtime:
    """The runtime a server of `settings` runs: over `engines` when given, else engines still to load.

    Raises:
        PolicyFileError: the policy file is invalid.
        AuditFileError: the audit file cannot be opened.
        LexiconError: the lexicon file is invalid (its line named).
    """
    shared = redis_client(settings)
    stores = None
    if shared is not None:
        stores = shared_stores(settings, shared)
        if policy is None:
            from policies.redis_quota_store import RedisQuotaStore

            policy = build_policy(settings, RedisQuotaStore(shared, settings.state.key_prefix))
    loader = engine_loader(settings)
    return Runtime.build(settings, engines, policy, tracing, stores=stores, loader=loader)


def engine_loader(settings: Settings) -> Callable[[], Engines]:
    """How the engines load: from the pool at the configured Ray address, or here."""
    cluster = settings.cluster
    if cluster.engines == "ray":
        from agent_tools.cluster.pool_engines import pool_engines

        address, timeout = cluster.ray_address, cluster.connect_timeout_seconds
        return lambda: pool_engines(settings.engines, address, timeout)
    return lambda: Engines.load(settings.engines)


def redis_client(settings: Settings) -> Redis | None:
    """One client (one connection pool) for every store kept in Redis, when Redis is configured;
    Redis is imported only then."""
    state = settings.state
    if state.redis_url is None:
        return None
    import redis

    timeout = state.redis_timeout_seconds
    return redis.Redis.from_url(state.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)


def shared_stores(settings: Settings, shared: Redis) -> Stores:
    """Clips and socket tickets in `shared` Redis: any front-end reads what another made."""
    from agent_tools.cluster.redis_audio_store import RedisAudioStore
    from agent_tools.cluster.redis_socket_tickets import RedisSocketTickets

    cfg, prefix = settings.service, settings.state.key_prefix
    bounds = (cfg.audio_store_max_items, cfg.audio_store_max_bytes, cfg.audio_store_ttl_seconds)
    tickets = RedisSocketTickets(shared, settings.server.socket_ticket_seconds, prefix)
    return Stores(RedisAudioStore(shared, *bounds, prefix), tickets)
