"""The session of an OpenAI Realtime transcription connection: the `session.update` shape clients
send (OpenAI's GA shape, `session.type = "transcription"`), merged field by field as OpenAI does (a
field left out keeps its value), and what it means for the core's live transcription."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_tools.core.live_settings import LiveSettings

DEFAULT_RATE = 24000  # OpenAI's only rate for audio/pcm; other rates are served too


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudioFormat(Strict):
    """The appended audio: little-endian PCM16, mono."""

    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int = Field(DEFAULT_RATE, ge=8000, le=48000)


class Transcription(Strict):
    """The recognizer's settings; `model` is any name (the loaded recognizer serves every one)."""

    model: str | None = Field(None, max_length=200)
    language: str | None = Field(None, max_length=16)
    prompt: str | None = Field(None, max_length=1000)


class ServerVad(Strict):
    """Utterances end at pauses: OpenAI's server VAD, served by the Silero VAD model. The response
    fields are accepted and have no effect: a transcription session creates no responses."""

    type: Literal["server_vad"]
    threshold: float | None = Field(None, gt=0.05, lt=0.95)
    prefix_padding_ms: int | None = Field(None, ge=0, le=2000)
    silence_duration_ms: int | None = Field(None, ge=96, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None


class SemanticVad(Strict):
    """Turns end when the speaker is done: a pause proposes an end and the turn's sound (Smart Turn)
    and words (English: as the live recognizer hears them) decide; `eagerness` bounds how long an
    unfinished turn is waited for (low 8 s, medium and auto 4 s, high 2 s), as OpenAI's semantic VAD
    does."""

    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class NoiseReduction(Strict):
    """Noise cleaned from the audio before voice activity detection and recognition (DeepFilterNet):
    `near_field` for a headset, `far_field` for a laptop or room microphone."""

    type: Literal["near_field", "far_field"]


class AudioInput(Strict):
    format: AudioFormat | None = None
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = Field(None, description="null: turns end where the client commits")
    noise_reduction: NoiseReduction | None = None


class Audio(Strict):
    input: AudioInput | None = None


class SessionUpdate(Strict):
    """The `session` of a `session.update` event."""

    type: Literal["transcription"] = Field(
        "transcription", description="only transcription sessions are served here"
    )
    audio: Audio | None = None
    include: list[str] | None = Field(None, max_length=8)


class RealtimeSession:
    """A connection's settings as the client set them, starting from OpenAI's defaults (24 kHz PCM,
    server VAD)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.format = AudioFormat()
        self.transcription = Transcription()
        self.turn_detection: ServerVad | SemanticVad | None = ServerVad(type="server_vad")
        self.noise_reduction: NoiseReduction | None = None

    def updated(self, update: SessionUpdate) -> LiveSettings:
        """Apply `update` (the fields it names) and return the live settings it amounts to; on a
        ValidationError nothing changes."""
        given = update.audio.input if update.audio and update.audio.input else AudioInput()
        fields = given.model_fields_set
        fmt = given.format if "format" in fields and given.format else self.format
        transcription = given.transcription if "transcription" in fields else self.transcription
        turns = given.turn_detection if "turn_detection" in fields else self.turn_detection
        noise = given.noise_reduction if "noise_reduction" in fields else self.noise_reduction
        settings = live_settings(
            fmt, transcription or Transcription(), turns, noise
        )  # raises before changing
        self.format, self.transcription, self.turn_detection = fmt, transcription or Transcription(), turns
        self.noise_reduction = noise
        return settings

    def live(self) -> LiveSettings:
        """The live settings now in force."""
        return live_settings(self.format, self.transcription, self.turn_detection, self.noise_reduction)

    def describe(self) -> dict[str, Any]:
        """The session object of `session.created` / `session.updated`."""
        turns = self.live()
        detection: dict[str, Any] | None = None
        if isinstance(self.turn_detection, SemanticVad):
            detection = {"type": "semantic_vad", "eagerness": turns.eagerness}
        elif self.turn_detection is not None:
            detection = {
                "type": "server_vad",
                "threshold": turns.threshold,
                "prefix_padding_ms": turns.pad_ms,
                "silence_duration_ms": turns.min_silence_ms,
            }
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.session_id,
            "audio": {
                "input": {
                    "format": self.format.model_dump(),
                    "transcription": self.transcription.model_dump(),
                    "turn_detection": detection,
                    "noise_reduction": self.noise_reduction.model_dump() if self.noise_reduction else None,
                }
            },
            "include": [],
        }


def live_settings(
    fmt: AudioFormat,
    transcription: Transcription,
    turns: ServerVad | SemanticVad | None,
    noise: NoiseReduction | None = None,
) -> LiveSettings:
    """The core's settings for OpenAI's.

    Raises:
        ValidationError: a value the core does not take (its message names the field).
    """
    values: dict[str, Any] = {
        "sample_rate": fmt.rate,
        "language": transcription.language or None,
        "prompt": transcription.prompt or None,
        "word_timestamps": False,
        "turn_detection": "manual" if turns is None else "vad" if turns.type == "server_vad" else "semantic",
        "noise_reduction": noise.type if noise is not None else None,
    }
    if isinstance(turns, SemanticVad) and turns.eagerness is not None:
        values["eagerness"] = turns.eagerness
    if isinstance(turns, ServerVad):
        for ours, theirs in (
            ("threshold", turns.threshold),
            ("pad_ms", turns.prefix_padding_ms),
            ("min_silence_ms", turns.silence_duration_ms),
        ):
            if theirs is not None:
                values[ours] = theirs
    return LiveSettings.model_validate(values)
