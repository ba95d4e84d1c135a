"""The messages of `/v1/speak/ws`: its query parameters and what a client sends."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class SpeakParams(BaseModel):
    """Query parameters of `/v1/speak/ws`, fixed for the connection."""

    model_config = ConfigDict(extra="forbid")

    voice: str | None = None
    speed: float = Field(1.0, ge=0.5, le=2.0)
    sample_rate: int | None = Field(None, ge=8000, le=48000)


class TextMessage(BaseModel):
    """More text for the open utterance."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str = Field(min_length=1)


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
