"""Endpointing: where utterances start and stop in a live stream, from per-window speech probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from speech_backend.results import Audio, Samples
from speech_backend.voice_activity.vad import VAD_RATE, WINDOW, SpeechProbabilities, VadSession

WINDOW_MS = WINDOW * 1000 / VAD_RATE


class EndpointSettings(BaseModel):
    """When speech counts as started and as stopped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.5, gt=0.05, lt=0.95, description="Speech probability that counts as speech.")
    min_speech_ms: int = Field(250, ge=32, le=5000, description="Speech this long starts an utterance.")
    min_silence_ms: int = Field(600, ge=96, le=10_000, description="Silence this long ends an utterance.")
    pad_ms: int = Field(300, ge=0, le=2000, description="Audio kept before the start and after the end.")
    max_utterance_seconds: float = Field(
        30.0, ge=1, le=120, description="An utterance this long is ended where it is."
    )
    eagerness: Literal["low", "medium", "high", "auto"] = Field(
        "auto",
        description="Semantic end of turn only: how soon a turn the model judges unfinished is ended "
        "anyway (the longest wait: low 8 s, medium and auto 4 s, high 2 s).",
    )


# The longest silence semantic end of turn waits through, by eagerness (OpenAI's semantic_vad's).
MAX_WAIT_MS = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}
COMPLETE = 0.5  # the turn model's probability from which a turn is finished
# The silence (as the VAD hears it, which lags the speech's end) after which the turn model judges.
# `benchmarks/turns.py`, 8 sentences with a 900 ms pause mid-sentence: judged at 100 / 200 / 300 ms,
# turns cut at the pause 4 / 5 / 4 of 8, whole turns' end of speech -> transcript p50 (eagerness
# auto) 1.96 / 3.25 / 2.37 s; the earliest ends a finished turn soonest.
JUDGE_AFTER_MS = 100

# Why an utterance ended: its silence (server VAD's wait, or semantic end of turn's for a turn judged
# unfinished, "timeout"), the turn model judging it finished, the client, or the length cap.
EndReason = Literal["silence", "semantic", "timeout", "commit", "max_length"]


@dataclass(frozen=True)
class SpeechStarted:
    """An utterance began at `start` seconds into the stream."""

    utterance: int
    start: float


@dataclass(frozen=True)
class SpeechStopped:
    """An utterance ended; `audio` holds it with its padding, `start`/`end` are stream seconds."""

    utterance: int
    start: float
    end: float
    audio: Audio
    reason: EndReason
    decided: float = 0.0  # stream seconds when the end was decided (the stream as far as it was heard)

    @property
    def forced(self) -> bool:
        """Ended where it was (by the client or the cap), not at a pause."""
        return self.reason in ("commit", "max_length")


@dataclass(frozen=True)
class SpeechPaused:
    """The open utterance has been silent for `pad_ms`: were the pause to end it, `audio` is exactly
    the audio its `SpeechStopped` would carry, so its final can be decoded ahead of the stop."""

    utterance: int
    audio: Audio


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back after a `SpeechPaused`: the utterance goes on."""

    utterance: int


EndpointEvent = SpeechStarted | SpeechStopped | SpeechPaused | SpeechResumed


class Endpointer:
    """Turns a 16 kHz stream into `SpeechStarted` / `SpeechStopped` events, holding only the current
    utterance (bounded by `max_utterance_seconds`) and a little audio before it.

    With a `judge` (semantic end of turn), silence proposes an end and the judge decides: at each
    pause of `JUDGE_AFTER_MS` it scores the utterance so far (the probability that the turn is finished);
    finished, the utterance ends there; else it ends after a silence that grows as the score falls,
    up to the eagerness's longest wait, and speech that comes back goes on in the same utterance.
    """

    def __init__(
        self, vad: VadSession, settings: EndpointSettings, judge: Callable[[Samples], float] | None = None
    ) -> None:
        self.settings = settings
        self._judge = judge
        self._probabilities = SpeechProbabilities(vad)
        self._negative = max(settings.threshold - 0.15, 0.01)
        self._pad = max(1, round(settings.pad_ms / WINDOW_MS))
        self._min_speech = max(1, round(settings.min_speech_ms / WINDOW_MS))
        silence_ms = MAX_WAIT_MS[settings.eagerness] if judge is not None else settings.min_silence_ms
        self._min_silence = max(1, round(silence_ms / WINDOW_MS))
        # the silence after which the stop's audio is known: its trailing pad is all there
        self._settled = max(1, self._pad)
        self._end_after = self._min_silence  # the silence that ends this pause (semantic: judged)
        self._judge_at = max(1, round(JUDGE_AFTER_MS / WINDOW_MS))
        self._max_windows = int(settings.max_utterance_seconds * 1000 / WINDOW_MS)
        self._windows_seen = 0
        self._since_stop = 0  # windows received since the last utterance ended (or the stream began)
        self._before: list[Samples] = []  # recent audio while idle (pad plus a pending start)
        self._voiced = 0  # consecutive speech windows while idle
        self._utterance: list[Samples] | None = None
        self._start_window = 0
        self._silent = 0
        self._count = 0

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is open."""
        return self._utterance is not None

    @property
    def utterance_count(self) -> int:
        """Utterances started so far (the open one's number while in speech)."""
        return self._count

    @property
    def seconds(self) -> float:
        """Stream time judged so far."""
        return self._windows_seen * WINDOW / VAD_RATE

    @property
    def received_seconds(self) -> float:
        """Stream time fed so far (judged, and the part of a window not yet judged)."""
        return self.seconds + len(self._probabilities.pending) / VAD_RATE

    def current(self) -> Audio | None:
        """The open utterance so far (for partial results), or None."""
        if self._utterance is None:
            return None
        return Audio(np.concatenate(self._utterance), VAD_RATE)

    def held(self) -> Samples:
        """The audio not yet in a stopped utterance (the open one, or the little kept before one), so
        that another segmenter can take over where this one is."""
        return _joined([*self._before, *(self._utterance or []), self._probabilities.pending])

    def push(self, samples: Samples) -> list[EndpointEvent]:
        """Feed 16 kHz samples; returns what started or stopped within them."""
        windows, probs = self._probabilities.push(samples)
        events: list[EndpointEvent] = []
        for window, prob in zip(windows, probs, strict=True):
            self._windows_seen += 1
            self._since_stop += 1
            if self._utterance is None:
                self._idle(window, float(prob), events)
            else:
                self._speaking(window, float(prob), events)
        return events

    def finish(self) -> list[EndpointEvent]:
        """The stream ended: close an open utterance."""
        return [self._stop("commit")] if self._utterance is not None else []

    def commit(self) -> list[EndpointEvent]:
        """End the open utterance here (the caller knows the turn is over). With none open, the audio
        received since the last one ended is an utterance of its own when it holds at least 100 ms
        (OpenAI's rule; of it, the last `pad_ms` is kept); else nothing."""
        if self._utterance is not None:
            return [self._stop("commit")]
        if self._since_stop * WINDOW < CommitSegmenter.MIN_COMMIT_SECONDS * VAD_RATE or not self._before:
            return []
        self._count += 1
        self._utterance, self._before, self._voiced = self._before, [], 0
        self._start_window = self._windows_seen - len(self._utterance)
        start = SpeechStarted(self._count, round(self._start_window * WINDOW / VAD_RATE, 3))
        return [start, self._stop("commit")]

    def clear(self) -> bool:
        """Drop the open utterance and the audio held before it; whether an utterance was dropped."""
        dropped = self._utterance is not None
        self._utterance, self._before, self._silent, self._voiced, self._since_stop = None, [], 0, 0, 0
        return dropped

    def _idle(self, window: Samples, prob: float, events: list[EndpointEvent]) -> None:
        self._before.append(window)
        if prob >= self.settings.threshold:
            self._voiced += 1
        elif prob < self._negative:
            self._voiced = 0
        if self._voiced >= self._min_speech:
            keep = self._voiced + self._pad
            self._utterance = self._before[-keep:]
            self._start_window = self._windows_seen - len(self._utterance)
            self._before, self._voiced, self._silent = [], 0, 0
            self._count += 1
            events.append(SpeechStarted(self._count, self._start_window * WINDOW / VAD_RATE))
        else:
            del self._before[: max(0, len(self._before) - self._pad - self._voiced)]

    def _speaking(self, window: Samples, prob: float, events: list[EndpointEvent]) -> None:
        assert self._utterance is not None
        self._utterance.append(window)
        paused = self._settled <= self._silent < self._end_after
        self._silent = self._silent + 1 if prob < self._negative else 0
        if not self._silent:
            self._end_after = self._min_silence  # speech again: a later pause is judged afresh
        if self._silent >= self._end_after:
            events.append(self._stop("timeout" if self._judge is not None else "silence"))
        elif len(self._utterance) >= self._max_windows:
            events.append(self._stop("max_length"))
        elif self._judge is not None and self._silent == self._judge_at and self._finished():
            events.append(self._stop("semantic"))
        elif self._silent == self._settled < self._end_after:
            events.append(SpeechPaused(self._count, self._kept_audio(self._silent)))
        elif paused and not self._silent:
            events.append(SpeechResumed(self._count))

    def _finished(self) -> bool:
        """Ask the judge about the utterance so far; unfinished, set how long a silence ends it."""
        assert self._judge is not None and self._utterance is not None
        score = self._judge(np.concatenate(self._utterance))
        if score >= COMPLETE:
            return True
        doubt = (COMPLETE - score) / COMPLETE  # 0 at the threshold, 1 at certainly unfinished
        self._end_after = self._judge_at + max(1, round((self._min_silence - self._judge_at) * doubt))
        return False

    def _stop(self, reason: EndReason) -> SpeechStopped:
        assert self._utterance is not None
        forced = reason in ("commit", "max_length")
        audio = self._kept_audio(0 if forced else self._silent)
        start = self._start_window * WINDOW / VAD_RATE
        end = start + audio.duration
        self._before = self._utterance[-self._pad :] if not forced else []
        self._utterance, self._silent, self._voiced, self._since_stop = None, 0, 0, 0
        self._end_after = self._min_silence
        return SpeechStopped(
            self._count, round(start, 3), round(end, 3), audio, reason, round(self.seconds, 3)
        )

    def _kept_audio(self, silent: int) -> Audio:
        """The open utterance without the silence beyond its trailing pad."""
        assert self._utterance is not None
        trailing = max(0, silent - self._pad)
        return Audio(np.concatenate(self._utterance[: len(self._utterance) - trailing]), VAD_RATE)


class CommitSegmenter:
    """Utterances the caller delimits: audio accumulates until `commit` (or `max_utterance_seconds`,
    where the utterance is ended as it is); no voice-activity model runs."""

    MIN_COMMIT_SECONDS = 0.1

    def __init__(self, max_utterance_seconds: float) -> None:
        self._max_samples = int(max_utterance_seconds * VAD_RATE)
        self._utterance: list[Samples] = []
        self._held = 0
        self._start = 0
        self._seen = 0
        self._count = 0

    @property
    def in_speech(self) -> bool:
        """Whether audio is waiting for a commit."""
        return self._held > 0

    @property
    def utterance_count(self) -> int:
        """Utterances started so far (the open one's number while audio waits)."""
        return self._count

    @property
    def seconds(self) -> float:
        """Stream time received so far."""
        return self._seen / VAD_RATE

    @property
    def received_seconds(self) -> float:
        """Stream time received so far."""
        return self.seconds

    def current(self) -> Audio | None:
        """The audio waiting for a commit, or None."""
        return Audio(np.concatenate(self._utterance), VAD_RATE) if self._held else None

    def held(self) -> Samples:
        """The audio waiting for a commit."""
        return _joined(self._utterance)

    def push(self, samples: Samples) -> list[EndpointEvent]:
        """Feed 16 kHz samples: the first after a commit starts an utterance; past the cap it ends."""
        events: list[EndpointEvent] = []
        while len(samples):
            if not self._held:
                self._count += 1
                self._start = self._seen
                events.append(SpeechStarted(self._count, round(self._start / VAD_RATE, 3)))
            take = samples[: self._max_samples - self._held]
            self._utterance.append(take)
            self._held += len(take)
            self._seen += len(take)
            samples = samples[len(take) :]
            if self._held >= self._max_samples:
                events.append(self._stop())
        return events

    def finish(self) -> list[EndpointEvent]:
        """The stream ended: what waits is an utterance."""
        return [self._stop()] if self._held else []

    def commit(self) -> list[EndpointEvent]:
        """End the utterance; nothing when less than 100 ms of audio waits (it stays)."""
        if self._held < self.MIN_COMMIT_SECONDS * VAD_RATE:
            return []
        return [self._stop()]

    def clear(self) -> bool:
        """Drop the audio waiting for a commit; whether there was any."""
        dropped = self._held > 0
        self._utterance, self._held = [], 0
        return dropped

    def _stop(self) -> SpeechStopped:
        audio = Audio(np.concatenate(self._utterance), VAD_RATE)
        start = self._start / VAD_RATE
        reason: EndReason = "max_length" if self._held >= self._max_samples else "commit"
        self._utterance, self._held = [], 0
        end = round(start + audio.duration, 3)
        return SpeechStopped(self._count, round(start, 3), end, audio, reason, round(self.seconds, 3))


Segmenter = Endpointer | CommitSegmenter


def _joined(parts: list[Samples]) -> Samples:
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
