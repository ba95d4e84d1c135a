"""Transcript renderings for people and players: plain text, JSON, SRT and WebVTT."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Literal

from speech_backend import Transcript

TranscriptFormat = Literal["text", "json", "srt", "vtt"]


def render(transcript: Transcript, fmt: TranscriptFormat) -> str:
    """Render `transcript` in `fmt`."""
    match fmt:
        case "text":
            return transcript.text + "\n"
        case "json":
            body = asdict(transcript) | {"untrusted_content": True}
            return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
        case "srt":
            return "\n".join(
                f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n"
                for i, s in enumerate(transcript.segments, start=1)
            )
        case "vtt":
            cues = "\n".join(
                f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n" for s in transcript.segments
            )
            return "WEBVTT\n\n" + cues


def _stamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
