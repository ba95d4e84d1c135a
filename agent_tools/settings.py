"""The one settings object, read from the environment once (in the CLI) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from speech_backend.audio.encode import AudioFormat
from speech_backend.config import EngineSettings

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


# OpenAI's voice names, each a distinct voice of fitting gender and accent (Kokoro's where it has
# one of the same name); a name whose voice is not installed speaks with the default voice.
OPENAI_VOICES = {
    "alloy": "af_alloy",
    "ash": "am_adam",
    "ballad": "bm_george",
    "coral": "af_heart",
    "echo": "am_echo",
    "fable": "bm_fable",
    "nova": "af_nova",
    "onyx": "am_onyx",
    "sage": "af_sarah",
    "shimmer": "af_bella",
    "verse": "am_michael",
}
# NVIDIA's stock Riva voice names (Magpie TTS Multilingual, FastPitch) that clients default to
# (LiveKit's plugin: ...EN-US.Leo; Pipecat's: ...EN-US.Aria), each with a catalogue voice of its
# language and gender.
RIVA_VOICES = {
    "Magpie-Multilingual.EN-US.Aria": "af_heart",
    "Magpie-Multilingual.EN-US.Sofia": "af_bella",
    "Magpie-Multilingual.EN-US.Mia": "af_nicole",
    "Magpie-Multilingual.EN-US.Leo": "am_michael",
    "Magpie-Multilingual.EN-US.Jason": "am_adam",
    "Magpie-Multilingual.EN-US.Ray": "am_eric",
    "Magpie-Multilingual.ES-US.Isabela": "ef_dora",
    "Magpie-Multilingual.ES-US.Diego": "em_alex",
    "Magpie-Multilingual.FR-FR.Louise": "ff_siwis",
    "English-US.Female-1": "af_sarah",
    "English-US.Male-1": "am_liam",
}


class ServiceSettings(BaseModel):
    """Bounds and defaults of the speech service, the same on every surface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_text_chars: int = Field(5000, ge=1, le=100_000, description="Longest `speak` text, in characters.")
    max_speech_seconds: float = Field(600.0, gt=0, description="Longest audio one `speak` call may produce.")
    default_format: AudioFormat = Field("wav", description="Audio format when a `speak` call names none.")
    synthesis_slots: int = Field(
        2,
        ge=1,
        le=64,
        description="Sentences synthesized at once; calls take turns. A sentence made alone uses "
        "Piper's `intra_op_threads`, each of several side by side its `busy_intra_op_threads`.",
    )
    recognition_slots: int = Field(
        2, ge=1, le=64, description="Recognitions run at once; keep at or below the Whisper worker count."
    )
    live_reserved_slots: int = Field(
        1,
        ge=0,
        le=64,
        description="Recognition slots kept for live finals while live streams are open (at most all "
        "but one): whole-file transcriptions and partials use the others.",
    )
    short_recognition_slots: int = Field(
        2,
        ge=1,
        le=64,
        description="Live utterances recognised at once by the short-utterance recognizer (Moonshine; "
        "one thread each).",
    )
    voice_activity_slots: int = Field(
        2, ge=1, le=64, description="Live-transcription frames judged for voice activity at once."
    )
    deterministic_speech: bool = Field(
        False, description="Synthesize without sampling noise: the same text always gives the same audio."
    )
    max_utterances: int = Field(
        16,
        ge=1,
        le=1000,
        description="Utterances being spoken at once, whole or streamed; they share the synthesis slots "
        "sentence by sentence.",
    )
    max_queued: int = Field(16, ge=0, le=10_000, description="Calls that may wait for a slot, per engine.")
    max_queue_wait_seconds: float = Field(
        30.0, gt=0, description="Longest a call waits for a slot before it is answered `busy`."
    )
    live_final_wait_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest a live turn's final waits for a recognition slot; past it the turn is "
        "answered with a `busy` error event at once (the stream goes on) rather than after the queue wait.",
    )
    openai_voices: dict[str, str] = Field(
        default_factory=lambda: dict(OPENAI_VOICES),
        description="OpenAI's voice names (`alloy`, `nova`, ...) and the catalogue voice each speaks with "
        "(JSON); a name whose voice is not installed speaks with the default voice.",
    )
    riva_voices: dict[str, str] = Field(
        default_factory=lambda: dict(RIVA_VOICES),
        description="NVIDIA's Riva voice names (`Magpie-Multilingual.EN-US.Aria`, ...) and the catalogue "
        "voice each speaks with over gRPC (JSON); a name whose voice is not installed speaks with the "
        "default voice.",
    )
    lead_in_words: int = Field(
        5,
        ge=0,
        le=50,
        description="Streamed speech opens with its first clause, or about this many words, made on "
        "its own so the first audio comes sooner; 0 makes the first sentence whole.",
    )
    promote_after_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest less urgent work (later sentences, whole-file transcriptions) is passed by "
        "more urgent work (first audio, live finals and partials) before it goes first.",
    )
    speak_timeout_seconds: float = Field(120.0, gt=0, description="Deadline of one `speak` call.")
    socket_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A WebSocket client that sends or reads nothing this long is closed (`timeout`).",
    )
    transcribe_timeout_seconds: float = Field(300.0, gt=0, description="Deadline of one `transcribe` call.")
    inline_audio_max_bytes: int = Field(
        512 * 1024,
        ge=0,
        le=700 * 1024,
        description="`speak` audio up to this size is returned inline; larger audio as an `audio://` link.",
    )
    audio_store_max_items: int = Field(256, ge=1, description="Clips kept for `audio://` handles.")
    audio_store_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="Bytes kept for `audio://` handles."
    )
    audio_store_ttl_seconds: float = Field(900.0, gt=0, description="How long an `audio://` handle lives.")
    file_roots: tuple[Path, ...] = Field(
        (), description="Folders `transcribe` may read `file://` paths from; empty turns `file://` off."
    )


class ServerSettings(BaseModel):
    """Where and how the server listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port.")
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host headers accepted (`name:port`, `name:*`); required when binding beyond loopback.",
    )
    allowed_origins: tuple[str, ...] = Field((), description="Origin headers accepted besides loopback ones.")
    drain_seconds: float = Field(30.0, ge=0, description="On SIGTERM, how long running calls may finish.")
    stateless_mcp: bool = Field(
        False,
        description="MCP over streamable HTTP without sessions, so any front-end behind a load balancer "
        "serves any request (`make cluster` turns it on).",
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="A connection whose request headers take longer than this is closed."
    )
    body_read_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="Longest pause while a request body arrives (then 408 `timeout`)."
    )
    body_timeout_seconds: float = Field(
        300.0, gt=0, le=3600, description="Longest a whole request body may take (then 408 `timeout`)."
    )
    socket_ticket_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="How long a socket ticket (`POST /v1/socket-tickets`, for browsers) stays valid; "
        "each is used once (on any front-end when tickets are kept in Redis).",
    )
    eval_report: Path = Field(
        Path(".cache/eval/report.html"),
        description="The eval report the page shows (`make eval` writes it here).",
    )
    grpc_port: int | Literal["off"] = Field(
        50051,
        ge=0,
        le=65535,
        description="Serve the Riva speech API over gRPC on this TCP port, on `host` beside HTTP "
        "(0: any free port; `off`: not served).",
    )
    grpc_max_message_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024 * 1024,
        le=512 * 1024 * 1024,
        description="Largest gRPC message received (a Recognize request carries the whole recording).",
    )
    wyoming_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve the Wyoming protocol (Home Assistant's voice pipeline) on this TCP port "
        "beside HTTP; unset: off (0: any free port).",
    )
    wyoming_host: str = Field("127.0.0.1", description="Wyoming's bind address; loopback by default.")
    wyoming_allowed_networks: tuple[str, ...] = Field(
        (),
        description="Client networks (CIDR) Wyoming answers besides loopback; Wyoming has no "
        "authentication, so binding beyond loopback requires this list.",
    )
    wyoming_principal: str | None = Field(
        None,
        description="The policy principal Wyoming calls run as (its limits, quotas and audit); unset: "
        "the local one.",
    )


class StateSettings(BaseModel):
    """Where state shared by front-ends lives: in this process (the default) or in Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = Field(
        None,
        description="Redis for `audio://` clips and quota counters shared by every front-end "
        "(`redis://host:6379/0`); unset keeps clips in memory and quotas in the policy's store.",
    )
    key_prefix: str = Field(
        "speech-tools", min_length=1, max_length=64, description="Prefix of every Redis key."
    )
    redis_timeout_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Longest wait for Redis before a call is answered `backend_unavailable`.",
    )


class ClusterSettings(BaseModel):
    """Where the engines run: in this process (the default), or as a Ray Serve pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engines: Literal["local", "ray"] = Field(
        "local", description="`ray`: call the synthesis and recognition deployments of a Ray Serve pool."
    )
    ray_address: str = Field("auto", description="The Ray cluster to join (`auto`, or `host:6379`).")
    connect_timeout_seconds: float = Field(
        120.0, gt=0, description="How long a front-end waits at start-up for the pool to be deployed."
    )


class Settings(BaseSettings):
    """Everything configurable, from `SPEECH_TOOLS_*` variables (nested with `__`)."""

    model_config = SettingsConfigDict(
        env_prefix="SPEECH_TOOLS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    log_level: LogLevel = Field("INFO", description="Log level of the stderr log.")
    policy_file: Path | None = Field(
        None,
        description="Policy file (YAML): principals, tokens, limits, content rules, audit. Default: one "
        "local principal with no limits, HTTP on loopback without tokens.",
    )
    engines: EngineSettings = EngineSettings()
    service: ServiceSettings = ServiceSettings()
    server: ServerSettings = ServerSettings()
    state: StateSettings = StateSettings()
    cluster: ClusterSettings = ClusterSettings()


def settings_table() -> str:
    """A Markdown table of every setting: environment variable, default and description."""
    rows = ["| variable | default | description |", "|---|---|---|"]
    rows.extend(_rows(Settings, "SPEECH_TOOLS_"))
    return "\n".join(rows)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_rows(annotation, f"{prefix}{name.upper()}__"))
            continue
        default = field.get_default(call_default_factory=True)
        if name == "cache_dir":
            default = "~/.cache/speech-tools"
        shown = f"[{', '.join(map(str, default))}]" if isinstance(default, tuple) else default
        out.append(f"| `{prefix}{name.upper()}` | `{shown}` | {field.description or ''} |")
    return out
