"""Every installed engine's voices through the service: Kokoro's beside Piper's, over MCP and the
OpenAI route, each file marked with the engine that made it."""

from __future__ import annotations

import json

import anyio
import httpx2
import numpy as np
import pytest
from mcp import Client
from openai import OpenAI
from websockets.asyncio.client import connect

from agent_tools.core.runtime import Runtime
from speech_backend import Audio, decode_audio, is_marked_synthetic
from speech_backend.config import AudioLimits
from tests.agent_tools.conftest import serve_http
from tests.wer import normalized_wer

pytestmark = pytest.mark.anyio


async def test_a_kokoro_voice_speaks_over_mcp_and_the_openai_route_marked_as_kokoro(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    text = "The train to London leaves from platform four at nine."
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            listed = await client.call_tool("list_voices", {"language": "en_GB"})
            spoken = await client.call_tool("speak", {"text": text, "voice": "bf_emma", "format": "wav"})
            heard = await client.call_tool(
                "transcribe", {"audio_uri": spoken.structured_content["audio_uri"]}
            )
        async with httpx2.AsyncClient(timeout=60) as http:
            body = {"model": "tts-1", "input": text, "voice": "bm_george", "response_format": "mp3"}
            mp3 = await http.post(f"{base}/v1/audio/speech", json=body)
    voices = listed.structured_content["voices"]
    assert len(voices) == 8 and {v["engine"] for v in voices} == {"kokoro"}
    result = spoken.structured_content
    assert (result["engine"], result["sample_rate"], result["voice"]) == ("kokoro", 24000, "bf_emma")
    starts = [w["start"] for w in result["words"]]
    assert [w["text"] for w in result["words"]] == text.split() and starts == sorted(starts)
    assert normalized_wer([text], [heard.structured_content["text"]]) <= 0.15
    assert mp3.status_code == 200
    decoded = await anyio.to_thread.run_sync(lambda: decode_audio(mp3.content, AudioLimits()))
    assert is_marked_synthetic(decoded.metadata) and "engine=kokoro" in decoded.metadata["comment"]


def median_pitch(audio: Audio) -> float:
    """The median fundamental frequency of the voiced 40 ms frames (autocorrelation, 60-400 Hz)."""
    rate, frame = audio.sample_rate, int(audio.sample_rate * 0.04)
    pitches = []
    for start in range(0, len(audio.samples) - frame, frame):
        x = audio.samples[start : start + frame] - audio.samples[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue  # silence or breath
        corr = np.correlate(x, x, "full")[frame - 1 :]
        low, high = rate // 400, rate // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.3 * corr[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


async def test_openai_voice_names_are_distinct_voices_and_nova_is_not_onyx(settings, catalog_engines):
    runtime = Runtime.build(settings, catalog_engines)
    text = "Thank you for calling. How can I help you today?"
    async with serve_http(runtime) as base:

        def create(voice: str) -> tuple[str, bytes]:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                response = client.audio.speech.with_raw_response.create(
                    model="tts-1", voice=voice, input=text, response_format="wav"
                )
                return response.headers["x-speech-voice"], response.content

        spoken = {name: await anyio.to_thread.run_sync(create, name) for name in ("nova", "onyx", "fable")}
    assert {name: voice for name, (voice, _) in spoken.items()} == {
        "nova": "af_nova",
        "onyx": "am_onyx",
        "fable": "bm_fable",
    }
    nova, onyx = (decode_audio(spoken[n][1], AudioLimits()).audio for n in ("nova", "onyx"))
    assert median_pitch(nova) > 1.4 * median_pitch(onyx)  # a woman's voice and a man's


async def test_speech_in_spanish_and_french_is_heard_back_when_the_language_is_named(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    spanish = "El tren sale de la estación a las ocho de la mañana."
    french = "Le colis arrive jeudi avant midi."
    async with serve_http(runtime) as base:
        async with Client(f"{base}/mcp") as client:
            spoken = await client.call_tool("speak", {"text": spanish, "voice": "ef_dora"})
            uri = spoken.structured_content["audio_uri"]
            heard = await client.call_tool("transcribe", {"audio_uri": uri, "language": "es"})

        def french_round_trip() -> str:
            with OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client:
                wav = client.audio.speech.create(
                    model="tts-1", voice="ff_siwis", input=french, response_format="wav"
                )
                return client.audio.transcriptions.create(
                    model="whisper-1", file=("fr.wav", wav.read()), language="fr"
                ).text

        heard_french = await anyio.to_thread.run_sync(french_round_trip)
    result = heard.structured_content
    assert result["language"] == "es" and normalized_wer([spanish], [result["text"]]) <= 0.25, result["text"]
    assert normalized_wer([french], [heard_french]) <= 0.25, heard_french
    assert catalog_engines.recognizer.model_id == "tiny.en"  # calls without a language keep it


async def test_speak_with_verify_says_what_was_heard_and_its_error_in_the_voices_language(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    english = "Your order number is four seven one nine, arriving on Friday."
    spanish = "El tren sale de la estación a las ocho de la mañana."
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        checked = await client.call_tool("speak", {"text": english, "verify": True, "format": "pcm"})
        checked_es = await client.call_tool("speak", {"text": spanish, "voice": "ef_dora", "verify": True})
        plain = await client.call_tool("speak", {"text": english})
    verified = checked.structured_content["verify"]
    assert verified["wer"] <= 0.15 and "friday" in verified["transcript"].lower()
    assert checked_es.structured_content["verify"]["wer"] <= 0.25
    assert plain.structured_content["verify"] is None  # (no recognition without it)


async def test_the_catalogue_has_54_voices_in_nine_languages_and_japanese_is_spoken_and_verified(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    japanese = "この荷物を木曜日までに届けてください。"
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        listed = await client.call_tool("list_voices", {})
        chinese = await client.call_tool("list_voices", {"language": "zh"})
        spoken = await client.call_tool("speak", {"text": japanese, "voice": "jm_kumo", "verify": True})
    voices = listed.structured_content["voices"]
    assert len(voices) >= 55 and {v["engine"] for v in voices} == {"kokoro", "piper"}
    assert len({v["language"].split("_")[0] for v in voices}) >= 8
    assert len(chinese.structured_content["voices"]) == 8
    result = spoken.structured_content
    assert "".join(w["text"] for w in result["words"]) == japanese  # the G2P's words, in order
    assert result["verify"]["wer"] <= 0.25, result["verify"]  # per character in Japanese


async def test_truncate_on_the_speech_socket_answers_with_the_words_a_kokoro_voice_said(
    settings, catalog_engines
):
    runtime = Runtime.build(settings, catalog_engines)
    text = "Your order shipped this morning. It should arrive on Thursday before noon."
    async with serve_http(runtime) as base:
        url = base.replace("http://", "ws://") + "/v1/speak/ws?voice=af_heart"
        async with connect(url) as ws:
            ready = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "text", "text": text}))
            await ws.send(json.dumps({"type": "end"}))
            events = [json.loads(m) for m in [await ws.recv() for _ in range(5)]]
            words = [w for e in events if e["type"] == "mark" for w in e["words"]]
            sixth = words[5]  # "It": the first word of the second sentence
            await ws.send(
                json.dumps({"type": "truncate", "played_ms": (sixth["start_ms"] + sixth["end_ms"]) / 2})
            )
            truncated = json.loads(await ws.recv())
    assert ready["voice"] == "af_heart" and [e["type"] for e in events] == [
        "mark",
        "audio",
        "mark",
        "audio",
        "done",
    ]
    assert " ".join(w["text"] for w in words) == text
    assert all(a["start_ms"] < a["end_ms"] <= b["start_ms"] for a, b in zip(words, words[1:], strict=False))
    assert truncated["text"] == "Your order shipped this morning." and truncated["words"] == words[:5]


async def test_a_sighup_reload_of_the_lexicon_changes_how_the_next_call_says_a_word(
    settings, catalog_engines, engine_settings, tmp_path
):
    from dataclasses import replace

    from speech_backend import build_synthesizer, resolve_device
    from speech_backend.lexicon import Lexicon

    path = tmp_path / "lexicon.yaml"
    path.write_text("kubectl: cube control\n", encoding="utf-8")
    lexicon = Lexicon(path)
    synthesizer = build_synthesizer(engine_settings, resolve_device("cpu"), "catalog", lexicon)
    runtime = Runtime.build(settings, replace(catalog_engines, synthesizer=synthesizer, lexicon=lexicon))
    text = "Now run kubectl to list the pods."
    async with serve_http(runtime) as base, Client(f"{base}/mcp") as client:
        before = await client.call_tool("speak", {"text": text, "verify": True})
        path.write_text("kubectl: cube cuddle\n", encoding="utf-8")
        runtime.reload()  # what SIGHUP does
        after = await client.call_tool("speak", {"text": text, "verify": True})
    assert "control" in before.structured_content["verify"]["transcript"].lower()
    assert "cuddle" in after.structured_content["verify"]["transcript"].lower()
