"""How turns end on `/v1/realtime`, driven by the `openai` client: semantic VAD keeps a turn with a
pause mid-sentence whole where server VAD splits it, each commit says why, and a commit with less
than 100 ms in the buffer is OpenAI's `input_audio_buffer_commit_empty` while the session goes on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from speech_backend import Audio, SynthesisOptions, Synthesizer
from tests.agent_tools.conftest import serve_http
from tests.agent_tools.web.test_realtime import (
    RATE,
    append,
    events_until,
    next_event,
    pcm24,
    realtime,
    session,
)
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio
SENTENCE = "So I was thinking that maybe we could meet on Tuesday."


def paused(synthesizer: Synthesizer, text: str, after: str, pause: float) -> Audio:
    """`text` said with a `pause` after the word `after` (cut from the whole sentence, so the first
    half has the sound of a sentence going on), then two seconds of silence."""
    chunks = list(synthesizer.synthesize(text, "en_US-joe-medium", SynthesisOptions(deterministic=True)))
    rate = chunks[0].audio.sample_rate
    samples = np.concatenate([c.audio.samples for c in chunks])
    cut = int(next(w for c in chunks for w in c.words if w.text == after).end * rate)
    gap, tail = np.zeros(int(pause * rate), np.float32), np.zeros(2 * rate, np.float32)
    return Audio(np.concatenate([samples[:cut], gap, samples[cut:], tail]), rate)


async def turns(
    base: str, detection: dict[str, Any], audio: Audio
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `session.updated` event, then every event until the stream's turns are transcribed."""
    async with realtime(base) as conn:
        await next_event(conn)
        await conn.session.update(session=session({"turn_detection": detection}))
        updated = await next_event(conn)
        await append(conn, pcm24(audio))
        await append(conn, pcm24(Audio(np.zeros(RATE * 5, np.float32), RATE)))  # time for any wait
        await conn.input_audio_buffer.commit()  # whatever is left: a turn, or commit_empty
        events: list[dict[str, Any]] = []
        while not any(e["type"] == "error" or e.get("reason") == "commit" for e in events):
            events.append(await next_event(conn))
        if events[-1]["type"] != "error":
            events += await events_until(conn, "conversation.item.input_audio_transcription.completed")
    return updated, events


async def test_semantic_vad_keeps_a_mid_sentence_pause_in_one_turn_that_server_vad_splits(
    runtime, synthesizer
):
    audio = paused(synthesizer, SENTENCE, "could", 0.9)
    async with serve_http(runtime) as base:
        _, by_silence = await turns(base, {"type": "server_vad", "silence_duration_ms": 500}, audio)
        updated, semantic = await turns(base, {"type": "semantic_vad", "eagerness": "high"}, audio)
    assert updated["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
    }
    silence_turns = [
        e for e in by_silence if e["type"] == "input_audio_buffer.committed" and e["reason"] != "commit"
    ]
    semantic_turns = [
        e for e in semantic if e["type"] == "input_audio_buffer.committed" and e["reason"] != "commit"
    ]
    assert [e["reason"] for e in silence_turns] == ["silence", "silence"]
    assert len(semantic_turns) == 1 and semantic_turns[0]["reason"] in ("semantic", "timeout")
    item = semantic_turns[0]["item_id"]
    done = next(e for e in semantic if e["type"].endswith("transcription.completed") and e["item_id"] == item)
    assert normalized_wer([SENTENCE], [done["transcript"]]) <= 0.15, done["transcript"]


async def test_a_commit_with_less_than_100_ms_is_commit_empty_and_one_with_more_commits_the_buffer(runtime):
    quiet = Audio(np.zeros(RATE, np.float32), RATE)
    async with serve_http(runtime) as base, realtime(base) as conn:
        await next_event(conn)
        await conn.input_audio_buffer.commit()  # nothing appended yet
        nothing = await next_event(conn)
        await append(conn, pcm24(Audio(quiet.samples[: RATE // 20], RATE)))  # 50 ms
        await conn.input_audio_buffer.commit()
        too_little = await next_event(conn)
        await append(conn, pcm24(Audio(quiet.samples[: RATE // 2], RATE)))  # 500 ms more
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    for error in (nothing, too_little):
        assert error["type"] == "error" and error["error"]["code"] == "input_audio_buffer_commit_empty"
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert committed["reason"] == "commit"
    assert events[-1]["usage"]["seconds"] >= 0.25  # what the buffer held (its last 300 ms at least)
