"""The messages of `/v1/speak/ws`: its query parameters and what a client sends."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agent_tools.core.requests import SampleRate, SpeakText, Speed, VoiceId


class SpeakParams(BaseModel):
    """Query parameters of `/v1/speak/ws`, fixed for the connection."""

    model_config = ConfigDict(extra="forbid")

    voice: VoiceId | None = None
    speed: Speed = 1.0
    sample_rate: SampleRate | None = None


class TextMessage(BaseModel):
    """More text for the open utterance."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: SpeakText


class ControlMessage(BaseModel):
    """Speak what is left, end the utterance, or stop it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["flush", "end", "cancel"]


class TruncateMessage(BaseModel):
    """The listener barged in after `played_ms` of an utterance's audio."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["truncate"]
    played_ms: float = Field(ge=0, le=24 * 3600 * 1000)
    utterance: int | None = Field(None, ge=1, description="Default: the last utterance that sent audio.")


SpeakMessage = TypeAdapter[TextMessage | ControlMessage | TruncateMessage](
    Annotated[TextMessage | ControlMessage | TruncateMessage, Field(discriminator="type")]
)
# Utterances whose delivered words a `truncate` can still ask about.
REMEMBERED_UTTERANCES = 8
