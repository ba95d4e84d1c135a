"""The caps every utterance is held to, on every surface: its text, its speed, its length."""

from __future__ import annotations

import math

from agent_tools.core.requests import MAX_SPEED, MIN_SPEED
from agent_tools.settings import ServiceSettings
from speech_backend import AudioTooLong, InvalidArgument, TextTooLong


class SpeechLimits:
    """Checks of one utterance against the service's caps (before synthesis, and as it grows)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.max_text_chars = settings.max_text_chars
        self.max_speech_seconds = settings.max_speech_seconds

    def check_text(self, text: str, spoken_chars: int = 0) -> None:
        """Refuse text over the character cap (counting `spoken_chars` already in the utterance).

        Raises:
            TextTooLong: with the limit attached.
        """
        total = spoken_chars + len(text)
        if total > self.max_text_chars:
            raise TextTooLong(
                f"text is {total} characters, over the limit of {self.max_text_chars}; "
                "split it into several calls",
                limit=self.max_text_chars,
            )

    def check_speed(self, speed: float) -> None:
        """Refuse a speed outside 0.5..2.0 (or not a number).

        Raises:
            InvalidArgument: naming the range.
        """
        if not math.isfinite(speed):
            raise InvalidArgument("speed must be a finite number")
        if not MIN_SPEED <= speed <= MAX_SPEED:  # the words of `requests.rule_message`
            raise InvalidArgument(f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g} (got {speed:g})")

    def check_spoken(self, seconds: float) -> None:
        """Refuse speech that has run past the per-call output cap.

        Raises:
            AudioTooLong: send less text or a higher speed.
        """
        if seconds > self.max_speech_seconds:
            raise AudioTooLong(
                f"the speech would be longer than {self.max_speech_seconds:g} s; "
                "send less text or a higher speed"
            )
