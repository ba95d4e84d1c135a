"""The one rule for a recognition language hint, shared by the in-process recognizer and the remote
one (which learns the model's languages from its replicas)."""

from __future__ import annotations

from collections.abc import Collection

from speech_backend.errors import InvalidArgument


def resolve_language(
    language: str | None, known: Collection[str], multilingual: bool, model_id: str
) -> str | None:
    """The language code to decode with: None detects (multilingual models), English-only models use en.

    Raises:
        InvalidArgument: an unknown code, or a non-English one on an English-only model.
    """
    if language is None:
        return None if multilingual else "en"
    code = language.strip().lower()
    if code not in known:
        raise InvalidArgument(f"unknown language {language!r}; use an ISO 639-1 code such as 'en' or 'de'")
    if not multilingual and code != "en":
        raise InvalidArgument(
            f"model {model_id} transcribes English only; omit language or configure a multilingual model"
        )
    return code
