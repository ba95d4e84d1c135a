"""Where `transcribe` audio may come from: inline base64, this server's handles, allowed files."""

from __future__ import annotations

import binascii
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from agent_tools.core.audio_store import SCHEME, StoredAudio
from agent_tools.core.errors import UriForbidden
from speech_backend import InvalidArgument, PayloadTooLarge

_FORBIDDEN_FILE = (
    "that file:// path is not readable by this server (outside the allowed roots, missing, or not a "
    "regular file); send the audio inline as audio_base64"
)


@dataclass(frozen=True)
class AudioSource:
    """Where the audio to transcribe comes from: exactly one of raw bytes (an upload), standard
    base64, or a URI (`audio://` handle or allowed `file://` path)."""

    data: bytes | None = None
    base64: str | None = None
    uri: str | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.data, self.base64, self.uri)) != 1:
            raise InvalidArgument("send exactly one of audio_base64 or audio_uri")


def source_bytes(
    source: AudioSource, read_clip: Callable[[str], StoredAudio], roots: tuple[Path, ...], max_bytes: int
) -> bytes:
    """The bytes of `source`: an upload as it came, base64 decoded, or what a URI names (a clip through
    `read_clip`, which checks who may read it and audits the read).

    Raises:
        PayloadTooLarge, InvalidArgument, UriForbidden.
    """
    if source.data is not None:
        return source.data
    if source.base64 is not None:
        return decode_base64(source.base64, max_bytes)
    return read_uri(source.uri or "", lambda uri: read_clip(uri).data, roots, max_bytes)


def decode_base64(text: str, max_bytes: int) -> bytes:
    """Strictly decode base64 audio, checking the size before decoding.

    Raises:
        PayloadTooLarge: the decoded size would be over `max_bytes`.
        InvalidArgument: not valid base64.
    """
    compact = "".join(text.split())
    if len(compact) // 4 * 3 > max_bytes + 3:
        raise PayloadTooLarge(
            f"audio_base64 decodes to more than {max_bytes} bytes; send a shorter or more compressed file"
        )
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise InvalidArgument(
            "audio_base64 is not valid base64; encode the file's bytes with standard base64"
        ) from exc


def read_uri(
    uri: str, read_clip: Callable[[str], bytes], allowed_roots: tuple[Path, ...], max_bytes: int
) -> bytes:
    """The bytes behind an `audio://` handle (through `read_clip`, which checks who may read it) or
    an allowed `file://` path.

    Raises:
        UriForbidden: any other scheme, an unknown handle, or a path outside the allowed roots.
        PayloadTooLarge: the file is over `max_bytes`.
    """
    if uri.startswith(SCHEME):
        return read_clip(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        allowed = "audio:// handles" + (" and file:// paths under the allowed roots" if allowed_roots else "")
        raise UriForbidden(f"only {allowed} are accepted; send the audio inline as audio_base64")
    if not allowed_roots or parsed.netloc not in ("", "localhost"):
        raise UriForbidden(_FORBIDDEN_FILE)
    return _read_allowed_file(Path(unquote(parsed.path)), allowed_roots, max_bytes)


def _read_allowed_file(path: Path, roots: tuple[Path, ...], max_bytes: int) -> bytes:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UriForbidden(_FORBIDDEN_FILE) from exc
    if not any(real.is_relative_to(root.resolve()) for root in roots):
        raise UriForbidden(_FORBIDDEN_FILE)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UriForbidden(_FORBIDDEN_FILE) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UriForbidden(_FORBIDDEN_FILE)
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise PayloadTooLarge(f"the file is {info.st_size} bytes, over the limit of {max_bytes}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the file is over the limit of {max_bytes} bytes")
    return data
