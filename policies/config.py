"""The policy file: principals with their tools, voices, limits, rates and quotas; content rules; audit.

Loaded from YAML and validated, with errors that name the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ToolName = Literal["speak", "transcribe", "list_voices"]
ALL_TOOLS: tuple[ToolName, ...] = ("speak", "transcribe", "list_voices")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Quota(BaseModel):
    """Usage allowed per principal per hour and per day (None: unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chars_per_hour: int | None = Field(None, ge=0)
    chars_per_day: int | None = Field(None, ge=0)
    audio_seconds_per_hour: float | None = Field(None, ge=0)
    audio_seconds_per_day: float | None = Field(None, ge=0)


class Principal(BaseModel):
    """Who may call, what, and how much."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    token_sha256: tuple[str, ...] = Field(
        (), description="SHA-256 (hex) of each bearer token of this principal."
    )
    tools: tuple[ToolName | Literal["*"], ...] = ("*",)
    voices: tuple[str, ...] = ("*",)
    max_text_chars: int | None = Field(None, ge=1)
    max_audio_seconds: float | None = Field(None, gt=0)
    rate_per_minute: int | None = Field(None, ge=1)
    quota: Quota = Quota()
    redact_pii: bool = False
    shares_audio_with: tuple[str, ...] = Field(
        (), description="Principals who may read this principal's audio:// clips ('*': all)."
    )

    @field_validator("token_sha256", mode="before")
    @classmethod
    def _hashes(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        for v in values or ():
            if not isinstance(v, str) or not _HEX64.match(v):
                raise ValueError("token_sha256 must be 64 lowercase hex digits (sha256 of the token)")
        return tuple(values or ())

    def may_use(self, tool: str) -> bool:
        """True when the principal may call `tool`."""
        return "*" in self.tools or tool in self.tools

    def may_speak_with(self, voice: str) -> bool:
        """True when the principal may use `voice`."""
        return "*" in self.voices or voice in self.voices


class BlockedPattern(BaseModel):
    """Text matching `pattern` (a regular expression, case-insensitive) is refused as rule `id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class ContentRules(BaseModel):
    """What text may be spoken."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocked_patterns: tuple[BlockedPattern, ...] = ()
    refuse_impersonation: bool = True


class AuditSettings(BaseModel):
    """Where decisions are recorded: one JSON line each, in a rotating file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(None, description="Audit file; relative paths are beside the policy file.")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0, le=100)
    on_failure: Literal["refuse", "continue"] = Field(
        "refuse",
        description="While the audit file cannot be written: refuse calls (`backend_unavailable`, "
        "retryable) or keep serving with records lost. Either way the server reports itself not ready.",
    )


class PolicyConfig(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    local_principal: str = Field("local", description="Who stdio and in-process callers are.")
    principals: tuple[Principal, ...] = (Principal(id="local"),)
    content: ContentRules = ContentRules()
    audit: AuditSettings = AuditSettings()
    quota_db: Path | None = Field(
        None, description="SQLite file keeping rate and quota state across restarts."
    )

    def principal(self, principal_id: str) -> Principal | None:
        """The principal with this id."""
        return next((p for p in self.principals if p.id == principal_id), None)

    @property
    def has_tokens(self) -> bool:
        """True when any principal can be reached by a bearer token."""
        return any(p.token_sha256 for p in self.principals)


class PolicyFileError(ValueError):
    """The policy file is unreadable or invalid; the message names the file and line."""


def load_policy(path: Path) -> PolicyConfig:
    """Read and validate a policy file; relative file paths in it resolve beside it.

    Raises:
        PolicyFileError: naming the file, the line and what is wrong.
    """
    document = read_yaml(path, PolicyFileError, "policy file")
    try:
        config = PolicyConfig.model_validate(document.data or {})
    except ValidationError as exc:
        raise PolicyFileError(document.describe(exc)) from exc
    return _resolve_paths(config, path.parent)


@dataclass(frozen=True)
class YamlDocument:
    """A YAML file's data, with the node tree that knows each value's line."""

    path: Path
    data: Any
    node: yaml.Node | None

    def line_of(self, loc: tuple[int | str, ...]) -> int:
        """The 1-based line of the value at `loc`."""
        return yaml_line_of(self.node, loc)

    def describe(self, exc: ValidationError) -> str:
        """`file:line: field: what is wrong`, for the first validation error."""
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if "[" not in str(p)) or "(top level)"
        return f"{self.path}:{self.line_of(first['loc'])}: {field}: {first['msg']}"


def read_yaml(path: Path, error: type[ValueError], what: str) -> YamlDocument:
    """Read a YAML file.

    Raises:
        error: the file is unreadable, or not valid YAML (naming the file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        return YamlDocument(path, yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc


def _resolve_paths(config: PolicyConfig, base: Path) -> PolicyConfig:
    audit = config.audit
    if audit.path is not None and not audit.path.is_absolute():
        audit = audit.model_copy(update={"path": base / audit.path})
    quota_db = config.quota_db
    if quota_db is not None and not quota_db.is_absolute():
        quota_db = base / quota_db
    return config.model_copy(update={"audit": audit, "quota_db": quota_db})


def yaml_line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at `loc`, or of the deepest node found on the way."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
