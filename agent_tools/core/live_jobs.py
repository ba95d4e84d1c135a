"""The work of a live stream's decoder: an utterance's audio to decode, and a final decoded ahead
while its utterance pauses."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from agent_tools.core.cost import Cost
from speech_backend import Audio, Transcript


@dataclass
class Guess:
    """A final decoded while its utterance pauses; `heard` once done, None if dropped or refused."""

    utterance: int
    audio: Audio
    done: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    heard: tuple[Transcript, Cost] | None = None
    started: bool = False

    def matches(self, utterance: int, audio: Audio) -> bool:
        """Whether this guess decoded exactly `audio` of `utterance`."""
        return self.utterance == utterance and len(self.audio.samples) == len(audio.samples)

    def drop(self) -> None:
        """Stop it (its result, if any, goes unused)."""
        self.scope.cancel()
        self.done.set()


@dataclass(frozen=True)
class Job:
    """Audio of one utterance to decode, partially (so far) or finally (all of it)."""

    utterance: int
    audio: Audio
    start: float
    end: float
    final: bool
    stopped_at: float = 0.0
    guess: Guess | None = None
