"""How one live transcription is run: the frames' rate, the language, partials, and endpointing."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from agent_tools.core.requests import SampleRate
from speech_backend.protocols import RECOGNITION_RATE
from speech_backend.voice_activity.endpointing import EndpointSettings


class LiveSettings(EndpointSettings):
    """How one stream is transcribed, fixed for the stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: Annotated[SampleRate, Field(description="Rate of the PCM16 frames sent.")] = RECOGNITION_RATE
    language: str | None = Field(None, description="Language hint; omitted, English-only models use en.")
    partial_interval_ms: int = Field(
        750, ge=0, le=10_000, description="New audio between partial results; 0 sends none."
    )
    word_timestamps: bool = Field(True, description="Words with their times in each `final`.")
    turn_detection: Literal["vad", "semantic", "manual"] = Field(
        "vad",
        description="vad: utterances end at pauses (the thresholds below); semantic: a pause proposes an "
        "end and the turn's sound and words decide whether the speaker is done (`eagerness` bounds "
        "the wait); "
        "manual: where the client commits.",
    )
    noise_reduction: Literal["near_field", "far_field"] | None = Field(
        None,
        description="Clean noise from the audio before voice activity detection and recognition: "
        "near_field for a headset, far_field for a laptop or room microphone; unset: as sent.",
    )
    prompt: str | None = Field(
        None, max_length=1000, description="Text that precedes the audio: names, terms, style."
    )

    def endpointing(self) -> EndpointSettings:
        """The endpointing thresholds alone."""
        return EndpointSettings.model_validate(self.model_dump(include=set(EndpointSettings.model_fields)))
