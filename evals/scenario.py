"""Dialog scenarios: YAML files of turns with expectations, validated with errors naming file and line.

A turn is one tool call (`speak`, `transcribe`, `list_voices`) or a streamed voice turn (`stream`,
over `/v1/speak/ws`). `${name}` in any string is replaced by the scenario's `variables` or the
runner's built-ins (`devset`: the dev-set folder).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policies.config import read_yaml, yaml_line_of

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message names the file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpeakArgs(_Strict):
    """The `speak` tool's arguments."""

    text: str
    voice: str | None = None
    format: Literal["wav", "flac", "mp3", "opus", "aac", "pcm"] | None = None
    speed: float | None = None
    sample_rate: int | None = None


class SpeechSource(_Strict):
    """Audio to transcribe: a recording, speech made for the turn, or the previous turn's audio."""

    file: str | None = Field(None, description="A recording, relative to the scenario file.")
    speak: SpeakArgs | None = Field(None, description="Speak this first (a round trip).")
    previous: bool = Field(False, description="The audio of the previous turn.")

    @model_validator(mode="after")
    def _one(self) -> SpeechSource:
        if sum((self.file is not None, self.speak is not None, self.previous)) != 1:
            raise ValueError("give exactly one of file, speak or previous")
        return self


class TranscribeArgs(_Strict):
    """The `transcribe` tool's arguments, with the audio named by its source."""

    audio: SpeechSource
    language: str | None = None
    word_timestamps: bool | None = None
    prompt: str | None = None


class ListVoicesArgs(_Strict):
    """The `list_voices` tool's arguments."""

    language: str | None = None


class StreamArgs(_Strict):
    """A streamed voice turn: text fed in `pieces` over `/v1/speak/ws`, optionally barged in on."""

    text: str
    voice: str | None = None
    speed: float | None = None
    pieces: int = Field(8, ge=1, le=1000, description="Send the text in this many pieces, like tokens.")
    cancel_after_sentences: int | None = Field(
        None, ge=1, description="Barge in (cancel) once this many sentences of audio arrived."
    )


class Noise(_Strict):
    """Noise mixed into a listened turn at `snr_db` against the speech: `pink` (stationary) or
    `swelling` (white noise whose level rises and falls three times a second, like traffic)."""

    kind: Literal["pink", "swelling"]
    snr_db: float = Field(5.0, ge=-10, le=40)


class ListenArgs(_Strict):
    """A caller heard live on `/v1/transcribe/ws`: speech made for the turn (`speak`), with a pause
    after one of its words and noise when asked, sent as a stream (0.5 s before, 5 s after); how its
    turns end and what is heard."""

    speak: SpeakArgs
    pause_after: str | None = Field(None, description="Pause after this word (as `words[]` writes it).")
    pause_ms: int = Field(900, ge=0, le=10_000)
    noise: Noise | None = None
    turn_detection: Literal["vad", "semantic"] = "vad"
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    min_silence_ms: int | None = Field(None, ge=96, le=10_000)
    noise_reduction: Literal["near_field", "far_field"] | None = None


class Bounds(_Strict):
    """An inclusive range; either end may be open."""

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        """Whether `value` is within the range."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Expect(_Strict):
    """What a turn must produce. Without `error`, the turn must succeed."""

    error: str | None = Field(None, description="The error code the turn must fail with.")
    wer_against: str | None = Field(None, description="Reference text for the word error rate.")
    max_wer: float = Field(0.15, ge=0, le=10)
    max_cer: float | None = Field(None, ge=0, le=10)
    contains: list[str] = Field(default_factory=list, description="Substrings the result text must have.")
    not_contains: list[str] = Field(default_factory=list, description="Substrings it must not have.")
    audio_seconds: Bounds | None = None
    within_ms: float | None = Field(None, gt=0, description="Latency budget of the whole turn.")
    first_audio_within_ms: float | None = Field(
        None, gt=0, description="Streamed turns: time to first audio."
    )
    language: str | None = None
    reason: Literal["end", "cancelled"] | None = Field(None, description="Streamed turns: how it ended.")
    max_sentences: int | None = Field(None, ge=0, description="Streamed turns: sentences delivered.")
    untrusted: bool | None = Field(None, description="Transcripts: flagged as untrusted content.")
    turns: int | None = Field(None, ge=0, description="Listened turns: how many turns the speech makes.")
    end_within_ms: float | None = Field(
        None, gt=0, description="Listened turns: end of speech to the turn's end, in stream time."
    )


ACTIONS = ("speak", "transcribe", "list_voices", "stream", "listen")


class Turn(_Strict):
    """One step of a dialog: exactly one action and its expectations."""

    name: str | None = None
    token: str | None = Field(None, description="Call as the principal of this bearer token.")
    speak: SpeakArgs | None = None
    transcribe: TranscribeArgs | None = None
    list_voices: ListVoicesArgs | None = None
    stream: StreamArgs | None = None
    listen: ListenArgs | None = None
    expect: Expect = Expect()
    repeat: int = Field(
        1,
        ge=1,
        le=1000,
        description="Call up to this many times, stopping at the first result that meets `expect` "
        "(for limits counted in windows, which a run may straddle).",
    )

    @model_validator(mode="after")
    def _one(self) -> Turn:
        actions = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(actions) != 1:
            raise ValueError("give exactly one of speak, transcribe, list_voices, stream or listen")
        return self

    @property
    def action(self) -> str:
        """Which action this turn takes."""
        return next(a for a in ACTIONS if getattr(self, a) is not None)


class Dataset(_Strict):
    """Recorded speech from a manifest (JSON lines of `id`, `path`, `reference`): one transcribe turn each."""

    manifest: str
    max_wer: float = Field(0.15, ge=0, le=10, description="Corpus word error rate allowed.")
    max_item_wer: float | None = Field(
        None, ge=0, le=10, description="Word error rate allowed for any one recording (default: no bound)."
    )


class Scenario(_Strict):
    """A dialog replayed against the server."""

    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(default_factory=dict)
    policy: dict[str, Any] | None = Field(
        None, description="A policy (as in a policy file) to run under; in-process runs only."
    )
    token: str | None = Field(None, description="Bearer token of the principal the turns call as.")
    dataset: Dataset | None = None
    turns: list[Turn] = Field(default_factory=list)
    path: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _has_work(self) -> Scenario:
        if not self.turns and self.dataset is None:
            raise ValueError("give turns, or a dataset")
        return self

    def resolve(self, relative: str) -> Path:
        """A path written in the scenario, relative to its file."""
        path = Path(relative)
        return path if path.is_absolute() else self.path.parent / path


def load_scenario(path: Path, builtins: dict[str, str]) -> Scenario:
    """Read, substitute and validate one scenario file.

    Raises:
        ScenarioError: naming the file, the line and what is wrong.
    """
    document = read_yaml(path, ScenarioError, "scenario")
    data, node = document.data, document.node
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario is a mapping with name and turns")
    variables = {**builtins, **{str(k): str(v) for k, v in (data.get("variables") or {}).items()}}
    data = _substitute(data, variables, path, node, ())
    try:
        return Scenario.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ScenarioError(document.describe(exc)) from exc


def load_scenarios(paths: list[Path], builtins: dict[str, str]) -> list[Scenario]:
    """Every scenario in `paths` (files, or folders searched for *.yaml), in name order per folder.

    Raises:
        ScenarioError: the first invalid file, or a path that does not exist.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.yaml") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{path}: no such scenario file or folder")
    if not files:
        raise ScenarioError(f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    return [load_scenario(f, builtins) for f in files]


def _substitute(value: Any, variables: dict[str, str], path: Path, node: Any, loc: tuple[Any, ...]) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                line = yaml_line_of(node, loc)
                raise ScenarioError(f"{path}:{line}: unknown variable ${{{name}}}; define it under variables")
            return variables[name]

        return _VARIABLE.sub(lookup, value)
    if isinstance(value, dict):
        return {
            k: v if k == "variables" else _substitute(v, variables, path, node, (*loc, k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, variables, path, node, (*loc, i)) for i, v in enumerate(value)]
    return value
