"""What a live stream's client sends — PCM16 frames, controls, new settings — and the bounds on
each frame, the same on every live surface."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

from agent_tools.core.live_settings import LiveSettings
from speech_backend import AudioTooLong, InvalidArgument, PayloadTooLarge
from speech_errors import ContractError

MAX_FRAME_SECONDS = 2.0
NOTHING_TO_COMMIT = (
    "nothing to commit: no utterance is open (with voice activity detection, speech must have "
    "started; with manual turns, at least 100 ms of audio must have arrived since the last one)"
)
WOUND_UP = (
    "the server is shutting down: the turns heard so far have been transcribed; reconnect (to another "
    "server) to go on"
)


class Control(enum.Enum):
    """What a client can ask of the stream besides sending audio."""

    COMMIT = "commit"  # the turn is over: end the open utterance here and decode it
    CLEAR = "clear"  # drop the open utterance unheard


# The next frame of PCM16, a control, new settings from here on, or None when the stream is over.
Frame = bytes | Control | LiveSettings | None
Receive = Callable[[], Awaitable[Frame]]


def frame_refusal(
    frame: bytes, rate: int, received_seconds: float, max_seconds: float
) -> ContractError | None:
    """Why a stream at `rate` that has carried `received_seconds` of audio (of at most `max_seconds`)
    cannot take `frame`, or None."""
    if len(frame) > int(rate * MAX_FRAME_SECONDS) * 2:
        return PayloadTooLarge(f"frames hold at most {MAX_FRAME_SECONDS:g} s of audio; send smaller ones")
    if len(frame) % 2:
        return InvalidArgument("a frame has an odd number of bytes; send whole 16-bit samples")
    if received_seconds + len(frame) / 2 / rate > max_seconds:
        return AudioTooLong(
            f"the stream is over the limit of {max_seconds:g} s of audio (what came before it was "
            "transcribed); open a new connection"
        )
    return None
