"""Sentences being made now in one process, by any engine. An engine that can make a sentence with
fewer threads (Piper's narrow sessions) does so when it is not alone, so that two engines side by
side share the machine's cores rather than crowd them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RunningSentences:
    """A count of sentences in the making, shared by the engines of one catalogue."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def sentence(self) -> Iterator[bool]:
        """Count one sentence while it is made; yields True when no other one is being made."""
        with self._lock:
            alone = self._count == 0
            self._count += 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1
