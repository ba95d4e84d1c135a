"""A short-lived, bounded store of audio served as `audio://<id>` handles: in this process
(`MemoryAudioStore`, the default) or in Redis shared by every front-end
(`agent_tools.cluster.redis_audio_store`)."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread

from agent_tools.core.audit_trail import audit_call
from agent_tools.core.errors import UriForbidden, error_body
from policies import Policy, Principal
from speech_backend import PayloadTooLarge

SCHEME = "audio://"
OWNER_RULE = "clip-owner"  # the audit line's rule when a clip exists but is not the reader's
UNKNOWN_CLIP = "that audio:// handle is unknown or has expired; call speak again, or send the audio inline"


@dataclass(frozen=True)
class StoredAudio:
    """One stored clip."""

    id: str
    data: bytes
    mime_type: str
    expires_at: float
    owner: str  # the principal that made it

    @property
    def uri(self) -> str:
        """The handle callers use."""
        return f"{SCHEME}{self.id}"


class AudioStore(Protocol):
    """Clips by id, bounded in count and bytes, each kept for a time-to-live; oldest go first."""

    def put(self, data: bytes, mime_type: str, owner: str, suffix: str = "") -> StoredAudio:
        """Store a clip made by principal `owner`.

        Raises:
            PayloadTooLarge: the clip alone is bigger than the store.
            BackendUnavailable: a shared store cannot be reached.
        """
        ...

    def get(self, uri_or_id: str) -> StoredAudio | None:
        """The clip for an `audio://<id>` handle or a bare id, or None when unknown or expired.

        Raises:
            BackendUnavailable: a shared store cannot be reached.
        """
        ...


def new_clip_id(suffix: str) -> str:
    """An unguessable clip id, with the format's extension."""
    return secrets.token_urlsafe(16) + (f".{suffix}" if suffix else "")


def too_large(size: int, max_bytes: int) -> PayloadTooLarge:
    """The refusal of a clip bigger than the whole store."""
    return PayloadTooLarge(
        f"the audio is {size} bytes, more than the audio store holds ({max_bytes}); "
        "ask for less text or a compressed format such as mp3 or opus"
    )


class MemoryAudioStore:
    """Clips in this process, bounded in count and bytes, each kept for a time-to-live."""

    def __init__(
        self,
        max_items: int,
        max_bytes: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, StoredAudio] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def put(self, data: bytes, mime_type: str, owner: str, suffix: str = "") -> StoredAudio:
        """Store a clip made by principal `owner`, evicting expired and then the oldest clips to stay
        within bounds.

        Raises:
            PayloadTooLarge: the clip alone is bigger than the store.
        """
        if len(data) > self.max_bytes:
            raise too_large(len(data), self.max_bytes)
        self._expire()
        while self._items and (
            len(self._items) >= self.max_items or self._bytes + len(data) > self.max_bytes
        ):
            self._drop(next(iter(self._items)))
        key = new_clip_id(suffix)
        clip = StoredAudio(key, data, mime_type, self._clock() + self.ttl_seconds, owner)
        self._items[clip.id] = clip
        self._bytes += len(data)
        return clip

    def get(self, uri_or_id: str) -> StoredAudio | None:
        """The clip for an `audio://<id>` handle or a bare id, or None when unknown or expired."""
        self._expire()
        return self._items.get(uri_or_id.removeprefix(SCHEME))

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._items.items() if v.expires_at <= now]:
            self._drop(key)

    def _drop(self, key: str) -> None:
        clip = self._items.pop(key)
        self._bytes -= len(clip.data)


def read_clip(
    store: AudioStore, policy: Policy, uri: str, reader: Principal, *, request_id: str, transport: str
) -> StoredAudio:
    """The clip behind an `audio://` handle (or bare id), for a principal the policy lets read it:
    the one that made it, or one its owner shares audio with. Every read gets an audit line.

    Raises:
        UriForbidden: unknown, expired, or not the reader's to read (the same message for each).
        AuditUnavailable: reads are refused while the audit trail cannot be written.
    """
    policy.check_audit()
    started = time.perf_counter()
    clip = store.get(uri)
    refusal = None  # the caller hears the same whether the clip is gone or someone else's
    if clip is None:
        refusal = error_body(UriForbidden(UNKNOWN_CLIP), request_id)
    elif not policy.may_read_audio(reader, clip.owner):
        refusal = {**error_body(UriForbidden(UNKNOWN_CLIP), request_id), "rule": OWNER_RULE}
    audit_call(
        policy,
        request_id=request_id,
        principal=reader,
        tool="read_audio",
        error=refusal,
        seconds=time.perf_counter() - started,
        transport=transport,
    )
    if clip is None or refusal is not None:
        raise UriForbidden(UNKNOWN_CLIP)
    return clip


async def keep_clip(
    store: AudioStore, data: bytes, mime_type: str, owner: str, suffix: str = ""
) -> StoredAudio:
    """`store.put`, off the event loop (the store may be Redis).

    Raises:
        PayloadTooLarge: the clip alone is bigger than the store.
    """
    return await anyio.to_thread.run_sync(lambda: store.put(data, mime_type, owner, suffix=suffix))


async def open_clip(
    store: AudioStore, policy: Policy, uri: str, reader: Principal, *, request_id: str, transport: str
) -> StoredAudio:
    """`read_clip`, off the event loop (the store may be Redis; the read is audited).

    Raises:
        UriForbidden, AuditUnavailable: as `read_clip`.
    """
    return await anyio.to_thread.run_sync(
        lambda: read_clip(store, policy, uri, reader, request_id=request_id, transport=transport)
    )
