"""The playground page in headless Chromium (Debian's, driven by Playwright): it loads clean, plays
streamed speech through Web Audio while highlighting the word being spoken, stops saying what was
heard, transcribes the microphone (Chromium's fake capture device playing a recording), and asks for
a token when the policy has tokens. Screenshots go to `.cache/screenshots`."""

from __future__ import annotations

import json
import os
import shutil
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from playwright.async_api import Page, async_playwright

from agent_tools.core.runtime import Runtime
from agent_tools.core.service import SpeechService
from agent_tools.settings import Settings
from policies import token_hash
from tests.agent_tools.conftest import serve_http
from tests.wer import normalized_wer

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = Path(os.environ.get("SPEECH_TOOLS_SCREENSHOTS", REPO / ".cache" / "screenshots"))
DEVSET = Path(os.environ.get("SPEECH_TOOLS_DEVSET", REPO / ".cache" / "devset"))
TEXT = (
    "Good evening, and welcome to the late news. Tonight the city council approved a new budget for "
    "public transport. Buses will run every ten minutes on the main routes from next spring. "
    "The weather stays dry until the weekend."
)

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is not installed: `make chromium` (make test does it) installs it"
    return found


@asynccontextmanager
async def browser_page(*args: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page in a fresh headless Chromium, and the console errors and page errors it reports."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), args=["--autoplay-policy=no-user-gesture-required", *args]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> None:
    """A screenshot of the whole page (Playwright makes the folder)."""
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def until(page: Page, script: str, timeout_s: float = 60) -> Any:
    """The value of `script` once it is truthy in the page (polled with `evaluate`: the page's
    content security policy forbids the string evaluation `wait_for_function` relies on)."""
    with anyio.fail_after(timeout_s):
        while not (value := await page.evaluate(script)):  # noqa: ASYNC110 - no event crosses into the page
            await anyio.sleep(0.05)
    return value


async def test_the_page_speaks_highlights_words_and_stops_with_what_was_heard(runtime: Runtime):
    async with serve_http(runtime) as base, browser_page() as (page, errors):
        await page.goto(f"{base}/")
        await until(page, "document.querySelectorAll('#speak-voice option').length > 0")
        await until(page, "document.querySelector('#status .ready')")
        limit = await until(
            page,
            "(n => n > 0 && n)(document.querySelector('#speak-text').maxLength)",
        )
        assert limit == runtime.settings.service.max_text_chars  # the server's bound, not one of its own
        await page.fill("#speak-text", TEXT)
        await page.click("#speak-play")
        # Audio through the graph: decoded samples queued and a level at the output.
        await until(
            page, "window.playground.speak.utterance && window.playground.speak.utterance.samples > 0"
        )
        level = await until(page, "window.playground.speak.level() > 0.01 && window.playground.speak.level()")
        await until(page, "window.playground.speak.highlighted.length >= 4")
        await shot(page, "playground-speaking")
        highlighted = await page.evaluate("window.playground.speak.highlighted")
        assert highlighted == sorted(highlighted)  # the highlight moves forward through the words
        assert await page.locator("#speak-words span.now").count() == 1
        peak = await page.evaluate("window.playground.speak.utterance.peak")
        await page.click("#speak-stop")
        heard = await page.evaluate("window.playground.speak.heard")
        await shot(page, "playground-stopped")
        assert level > 0.01 and peak > 0.1
        words = TEXT.split()
        said = heard["text"].split()
        assert 0 < len(said) < len(words) and said == words[: len(said)]  # a prefix, cut where it stopped
        assert heard["text"] in await page.inner_text("#speak-heard")
        assert errors == []


async def test_the_page_downloads_the_text_as_a_clip_in_every_format(runtime: Runtime):
    from speech_backend import AudioLimits, decode_audio

    async with serve_http(runtime) as base, browser_page() as (page, errors):
        await page.goto(f"{base}/")
        await until(page, "document.querySelectorAll('#speak-voice option').length > 0")
        await page.fill("#speak-text", "Your table for four is booked for seven thirty tonight.")
        sizes: dict[str, int] = {}
        for fmt in ("wav", "mp3", "flac", "opus", "aac", "pcm"):
            await page.select_option("#download-format", fmt)
            async with page.expect_download(timeout=60_000) as event:
                await page.click("#download")
            download = await event.value
            path = await download.path()
            data = await anyio.Path(path).read_bytes()
            sizes[fmt] = len(data)
            assert download.suggested_filename.startswith("speech.")
            if fmt == "pcm":  # raw 16-bit samples at 24 kHz, as OpenAI's pcm
                assert len(data) % 2 == 0 and len(data) / 2 / 24000 > 2.0
            else:
                assert decode_audio(data, AudioLimits()).audio.duration > 2.0, fmt
        assert errors == []
    assert sizes["mp3"] < sizes["wav"]


def padded_recording(tmp_path: Path) -> tuple[Path, str]:
    """The JFK clip with four seconds of silence after it (the fake device loops the file: the pause
    ends the utterance before it comes round again), and what it says."""
    manifest = [json.loads(line) for line in (DEVSET / "manifest.jsonl").read_text().splitlines()]
    entry = next(e for e in manifest if e["id"] == "jfk")
    with wave.open(str(DEVSET / entry["path"]), "rb") as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    assert params.sampwidth == 2 and params.nchannels == 1
    silence = np.zeros(params.framerate * 4, dtype="<i2").tobytes()
    path = tmp_path / "jfk-padded.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames + silence)
    return path, str(entry["reference"])


async def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float) -> Any:
    """`read()` until `done(value)`, at most `timeout_s` (then the last value)."""
    value = await read()
    with anyio.move_on_after(timeout_s):
        while not done(value):
            await anyio.sleep(0.3)
            value = await read()
    return value


async def test_the_microphone_is_transcribed_live(runtime: Runtime, tmp_path: Path):
    recording, reference = padded_recording(tmp_path)
    fake_microphone = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={recording}",
    )
    async with serve_http(runtime) as base, browser_page(*fake_microphone) as (page, errors):
        await page.goto(f"{base}/")
        await until(page, "document.querySelector('#status .ready')")
        await page.click("#listen-mic")

        async def heard() -> str:
            return str(await page.evaluate("window.playground.listen.finals.map(f => f.text).join(' ')"))

        text = await poll(heard, lambda t: bool(t) and normalized_wer([reference], [t]) <= 0.2, 90)
        await shot(page, "playground-listening")
        finals = await page.evaluate("window.playground.listen.finals")
        await page.click("#listen-mic")  # stop
        assert normalized_wer([reference], [text]) <= 0.2, text
        assert all(f["words"] and f["latency_ms"] >= 0 for f in finals)
        assert await page.locator("#listen-finals li").count() == len(finals)
        assert errors == []


@pytest.fixture
def token_runtime(settings: Settings, service: SpeechService, tmp_path: Path) -> Runtime:
    """The real engines under a policy whose one principal has a token."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nlocal_principal: a\nprincipals:\n"
        f"  - id: a\n    token_sha256: [{token_hash('page-token')}]\n"
    )
    return Runtime.build(settings.model_copy(update={"policy_file": policy}), service.require())


async def test_with_a_token_policy_the_page_asks_for_a_token_and_keeps_it_out_of_urls(
    token_runtime: Runtime, tmp_path: Path
):
    clip, reference = padded_recording(tmp_path)
    async with serve_http(token_runtime) as base, browser_page() as (page, _):
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        await page.goto(f"{base}/")
        await until(page, "!document.querySelector('#token-form').hidden")
        assert await page.locator("#speak-voice option").count() == 0  # nothing served without a token
        await page.fill("#token", "wrong-token")
        await page.click("#token-form button")
        await until(page, "document.querySelector('#token-error').textContent.length > 0")
        await shot(page, "playground-token")
        await page.fill("#token", "page-token")
        await page.click("#token-form button")
        await until(page, "document.querySelector('#token-form').hidden")
        await until(page, "document.querySelectorAll('#speak-voice option').length > 0")
        await page.click("#speak-play")
        await until(
            page, "window.playground.speak.utterance && window.playground.speak.utterance.samples > 0"
        )
        await page.set_input_files("#listen-file", str(clip))  # a socket, opened with a ticket
        ended = await until(
            page, "window.playground.listen.ended.length > 0 && window.playground.listen.ended"
        )
        assert ended[0]["type"] == "done", ended
        text = await page.evaluate("window.playground.listen.finals.map(f => f.text).join(' ')")
        assert normalized_wer([reference], [text]) <= 0.2, text
        assert await page.evaluate("localStorage.length") == 0
        assert await page.evaluate("sessionStorage.getItem('speech-tools.token')") == "page-token"
    assert urls and not any("page-token" in url for url in urls)


async def test_the_page_picks_a_language_then_one_of_its_voices_and_speaks_in_it(settings, catalog_engines):
    runtime = Runtime.build(settings, catalog_engines)
    async with serve_http(runtime) as base, browser_page() as (page, errors):
        await page.goto(f"{base}/")
        await until(page, "document.querySelectorAll('#speak-language option').length > 5")
        await page.select_option("#speak-language", "es")
        offered = await page.eval_on_selector_all(
            "#speak-voice option", "options => options.map(o => o.value)"
        )
        await page.select_option("#speak-voice", "ef_dora")
        text = await page.input_value("#speak-text")
        await page.click("#speak-play")
        await until(
            page, "window.playground.speak.utterance && window.playground.speak.utterance.samples > 0"
        )
        level = await until(page, "window.playground.speak.level() > 0.01 && window.playground.speak.level()")
        await until(page, "window.playground.speak.highlighted.length >= 3")
        await shot(page, "playground-spanish")
    assert sorted(offered) == ["ef_dora", "em_alex", "em_santa"]  # only the language's voices
    assert text.startswith("Buenas noches")  # the page's sample follows the language
    assert level > 0.01 and errors == []
