"""What a request may say: the bounded values every surface takes, each rule written once here, and
the one message each rule gives whatever the surface (MCP arguments, HTTP bodies, socket parameters
and messages). A surface declares its fields with these types and turns a `ValidationError` into
`invalid_request(exc)`; a bound changes in one line and every surface's schema and wording follow."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from speech_backend import InvalidArgument

MIN_SPEED, MAX_SPEED = 0.5, 2.0
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
MAX_VOICE_ID_CHARS = 128

Speed = Annotated[
    float,
    Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False, description="1.0 is normal; 2.0 twice as fast."),
]
SampleRate = Annotated[int, Field(ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)]
SpeakText = Annotated[str, Field(min_length=1, description="Plain text to speak; markup is not interpreted.")]
VoiceId = Annotated[str, Field(min_length=1, max_length=MAX_VOICE_ID_CHARS)]
# The optional fields' help, said where they are declared (on the field, not inside its union)
VOICE_HELP = "Voice id from list_voices; default: the server's."
SAMPLE_RATE_HELP = "Output rate in Hz; default: the voice's."

# Both ends of each bounded value, by field name: its message names the range, not one side of it.
RANGES: dict[str, tuple[float, float]] = {
    "speed": (MIN_SPEED, MAX_SPEED),
    "sample_rate": (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
}


class SpeakRequest(BaseModel):
    """One utterance to speak, as every speech surface takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: SpeakText
    voice: Annotated[VoiceId | None, Field(description=VOICE_HELP)] = None
    speed: Speed = 1.0
    sample_rate: Annotated[SampleRate | None, Field(description=SAMPLE_RATE_HELP)] = None


def request_limits(max_text_chars: int) -> dict[str, Any]:
    """The bounds a client (the page) shows before it sends anything."""
    return {
        "speed": {"min": MIN_SPEED, "max": MAX_SPEED, "default": 1.0},
        "sample_rate": {"min": MIN_SAMPLE_RATE, "max": MAX_SAMPLE_RATE},
        "text": {"max_chars": max_text_chars},
        "voice": {"max_chars": MAX_VOICE_ID_CHARS},
    }


def invalid_request(exc: ValidationError) -> InvalidArgument:
    """The `invalid_argument` a validation error is: one sentence per broken rule, naming the field
    and what it takes (never the text sent)."""
    return InvalidArgument("; ".join(dict.fromkeys(rule_message(error) for error in exc.errors())))


# Each rule's words: `{field}`, the value shown for numbers (`{got}`) and the rule's context.
RULES: dict[str, str] = {
    "greater_than_equal": "{field} must be at least {ge}{got}",
    "less_than_equal": "{field} must be at most {le}{got}",
    "greater_than": "{field} must be more than {gt}{got}",
    "less_than": "{field} must be less than {lt}{got}",
    "missing": "{field} is required",
    "extra_forbidden": "{field} is not a field this request takes",
    "string_too_short": "{field} must be at least {min_length} characters",
    "string_too_long": "{field} must be at most {max_length} characters",
    "finite_number": "{field} must be a finite number",
    "float_parsing": "{field} must be a number",
    "float_type": "{field} must be a number",
    "int_parsing": "{field} must be a whole number",
    "int_type": "{field} must be a whole number",
    "int_from_float": "{field} must be a whole number",
    "bool_parsing": "{field} must be true or false",
    "bool_type": "{field} must be true or false",
    "string_type": "{field} must be a string",
    "literal_error": "{field} must be one of {expected}",
    "enum": "{field} must be one of {expected}",
}
_BOUNDS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def rule_message(error: ErrorDetails) -> str:
    """What the rule `error` broke says, the same on every surface."""
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "the request"
    kind, ctx, value = error["type"], dict(error.get("ctx", {})), error.get("input")
    got = f" (got {_number(value):g})" if kind in _BOUNDS and _number(value) is not None else ""
    name = field.rsplit(".", 1)[-1]
    if kind in _BOUNDS and name in RANGES:
        low, high = RANGES[name]
        return f"{field} must be between {low:g} and {high:g}{got}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # the field that names the kind
        tag = str(ctx.get("discriminator", "type")).strip("'")
        field = f"{field}.{tag}" if error["loc"] else tag
        if kind == "union_tag_not_found":
            return f"{field} is required"
        return f"{field} must be one of {ctx.get('expected_tags', '')}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{field} must not be empty"
    template = RULES.get(kind)
    try:
        return template.format(field=field, got=got, **ctx) if template else f"{field}: {error['msg']}"
    except KeyError:  # a context this wording does not expect
        return f"{field}: {error['msg']}"


def _number(value: object) -> float | None:
    """A bounded value as the number it was read as (query parameters arrive as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) and len(value) < 40 else None
    except ValueError:
        return None
