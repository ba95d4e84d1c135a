"""Errors raised by the speech backend.

Every error carries a stable ``code`` (see the error contract) and a message written for the caller
that reads it: what went wrong and what to do instead. The tree::

    SpeechError (code, retryable; a ContractError)
    ├── InvalidArgument        invalid_argument   bad option, empty or unusable text
    ├── PayloadTooLarge        payload_too_large  encoded input over the byte cap
    ├── TextTooLong            text_too_long      text over the character cap
    ├── AudioTooLong           audio_too_long     decoded audio over the duration cap
    ├── UnsupportedMedia       unsupported_media  not audio, or a format outside the allowlist
    ├── DecodeFailed           decode_failed      corrupt, truncated or absurd audio
    ├── VoiceNotFound          voice_not_found    voice id not in the catalog
    ├── ModelNotFound          backend_unavailable a configured model file is missing or corrupt
    ├── BackendUnavailable     backend_unavailable engine not loaded or crashed
    └── Cancelled              cancelled          the caller gave up; work stopped between chunks
"""

from __future__ import annotations

from speech_errors import ContractError


class SpeechError(ContractError):
    """Base of every error the backend raises on purpose."""


class InvalidArgument(SpeechError, ValueError):
    """An argument is out of range, of the wrong kind, or empty."""

    code = "invalid_argument"


class PayloadTooLarge(SpeechError, ValueError):
    """The encoded input is larger than the configured byte cap."""

    code = "payload_too_large"


class TextTooLong(SpeechError, ValueError):
    """The text to speak is longer than the configured character cap."""

    code = "text_too_long"


class AudioTooLong(SpeechError, ValueError):
    """Decoded audio is longer than the configured duration cap (counted while decoding)."""

    code = "audio_too_long"


class UnsupportedMedia(SpeechError, ValueError):
    """The input is not audio, or its container or codec is outside the allowlist."""

    code = "unsupported_media"


class DecodeFailed(SpeechError, ValueError):
    """The audio is corrupt, truncated, empty of samples, or has absurd parameters."""

    code = "decode_failed"


class VoiceNotFound(SpeechError, LookupError):
    """The voice id is not in the catalog."""

    code = "voice_not_found"


class BackendUnavailable(SpeechError, RuntimeError):
    """An engine is not loaded or has failed; the caller may retry later."""

    code = "backend_unavailable"
    retryable = True


class ModelNotFound(BackendUnavailable, FileNotFoundError):
    """A configured model file is missing or unreadable; the message names the file and the setting."""

    retryable = False


class Cancelled(SpeechError):
    """The caller cancelled; the engine stopped between sentences or segments."""

    code = "cancelled"
