"""`audio://` clips in Redis, so that a clip spoken through one front-end is read through any other.
The same bounds as in memory — a time-to-live per clip, a cap on clips and on bytes across the whole
deployment, oldest out first — kept by Lua scripts that run atomically in Redis. Imported only when
Redis is configured."""

from __future__ import annotations

import time
from typing import Any

import redis

from agent_tools.core.audio_store import SCHEME, StoredAudio, new_clip_id, too_large
from speech_backend import BackendUnavailable

UNREACHABLE = "the shared audio store (Redis) cannot be reached; retry shortly"

# KEYS: the clip index (sorted by time stored), the sizes hash, the byte counter, the new clip's key.
# ARGV: id, data, mime type, owner, (unused), ttl (ms), max clips, max bytes, the clip key prefix.
_PUT = """
local index, sizes, total, key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, data, mime, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local clock = redis.call('TIME')  -- Redis's clock, the same for every front-end
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl, max_items, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local function drop(old)
  local size = tonumber(redis.call('HGET', sizes, old) or '0')
  redis.call('DECRBY', total, size)
  redis.call('HDEL', sizes, old)
  redis.call('ZREM', index, old)
  redis.call('DEL', ARGV[9] .. old)
end
for _, old in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now - ttl)) do drop(old) end
while redis.call('ZCARD', index) > 0 and (redis.call('ZCARD', index) >= max_items
    or tonumber(redis.call('GET', total) or '0') + #data > max_bytes) do
  drop(redis.call('ZRANGE', index, 0, 0)[1])
end
redis.call('HSET', key, 'data', data, 'mime', mime, 'owner', owner)
redis.call('PEXPIRE', key, ttl)
redis.call('ZADD', index, now, id)
redis.call('HSET', sizes, id, #data)
redis.call('INCRBY', total, #data)
return 1
"""


class RedisAudioStore:
    """Clips under `<prefix>:{clips}:clip:<id>` (one hash slot, so the scripts work on Redis Cluster)."""

    def __init__(
        self, client: redis.Redis, max_items: int, max_bytes: int, ttl_seconds: float, prefix: str
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._redis = client
        base = f"{prefix}:{{clips}}"
        self._clip_prefix = f"{base}:clip:"
        self._keys = [f"{base}:index", f"{base}:sizes", f"{base}:bytes"]
        self._put: Any = client.register_script(_PUT)

    def put(self, data: bytes, mime_type: str, owner: str, suffix: str = "") -> StoredAudio:
        """Store a clip, evicting expired and then the oldest clips to stay within bounds.

        Raises:
            PayloadTooLarge: the clip alone is bigger than the store.
            BackendUnavailable: Redis cannot be reached.
        """
        if len(data) > self.max_bytes:
            raise too_large(len(data), self.max_bytes)
        key = new_clip_id(suffix)
        ttl_ms = round(self.ttl_seconds * 1000)
        args = [key, data, mime_type, owner, 0, ttl_ms]
        args += [self.max_items, self.max_bytes, self._clip_prefix]
        try:
            self._put(keys=[*self._keys, self._clip_prefix + key], args=args)
        except redis.RedisError as exc:
            raise BackendUnavailable(UNREACHABLE) from exc
        return StoredAudio(key, data, mime_type, time.monotonic() + self.ttl_seconds, owner)

    def get(self, uri_or_id: str) -> StoredAudio | None:
        """The clip, or None when unknown or expired.

        Raises:
            BackendUnavailable: Redis cannot be reached.
        """
        key = uri_or_id.removeprefix(SCHEME)
        try:
            with self._redis.pipeline() as pipe:
                pipe.hgetall(self._clip_prefix + key)
                pipe.pttl(self._clip_prefix + key)
                fields, ttl_ms = pipe.execute()
        except redis.RedisError as exc:
            raise BackendUnavailable(UNREACHABLE) from exc
        if not fields or ttl_ms is None or ttl_ms < 0:
            return None
        return StoredAudio(
            key,
            fields[b"data"],
            fields[b"mime"].decode(),
            time.monotonic() + ttl_ms / 1000,
            fields[b"owner"].decode(),
        )
