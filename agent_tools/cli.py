"""`speech-tools`: the one entry point (serve, speak, transcribe, voices)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_args

import anyio
from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent_tools.core.service import SpeechService
from agent_tools.core.sources import AudioSource
from agent_tools.core.subtitles import TranscriptFormat, render
from agent_tools.logs import configure_logging
from agent_tools.settings import Settings
from speech_backend import (
    AUDIO_FORMATS,
    AudioFormat,
    SpeechError,
    build_synthesizer,
    resolve_device,
)
from speech_backend.audio.encode import format_for_suffix

logger = logging.getLogger("speech_tools")

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        print(f"error [invalid_configuration]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging("WARNING" if args.command != "serve" and not args.verbose else settings.log_level)
    try:
        result: int = args.handler(args, settings)
        return result
    except SpeechError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE if exc.retryable else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-tools", description="Speech as typed tools for agents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at the configured level to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the MCP server (stdio, or HTTP with /mcp and /sse)")
    serve.add_argument("--transport", choices=["http", "stdio"], default="http", help="default: http")
    serve.add_argument("--host", help="bind address (default: SPEECH_TOOLS_SERVER__HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default: SPEECH_TOOLS_SERVER__PORT or 8000)")
    serve.set_defaults(handler=_serve)

    policy = sub.add_parser("policy", help="check a policy file, or hash a token for one")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="validate a policy file (errors name the line)")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_policy_check)
    hasher = policy_sub.add_parser("hash-token", help="read a token on stdin, print its token_sha256")
    hasher.set_defaults(handler=_policy_hash)

    table = sub.add_parser("settings", help="print every setting as a Markdown table (as in the README)")
    table.set_defaults(handler=_settings)

    voices = sub.add_parser("voices", help="list the installed voices")
    voices.add_argument("--language", help="only voices of this language, e.g. en or en_US")
    voices.add_argument("--json", action="store_true", help="print JSON")
    voices.set_defaults(handler=_voices)

    speak = sub.add_parser("speak", help="synthesize text to an audio file")
    speak.add_argument("text", help="text to speak, or - to read it from standard input")
    speak.add_argument("-o", "--output", type=Path, required=True, help="audio file to write (- for stdout)")
    speak.add_argument("--voice", help="voice id (see `speech-tools voices`)")
    speak.add_argument("--format", choices=AUDIO_FORMATS, help="audio format (default: from the file suffix)")
    speak.add_argument("--speed", type=float, default=1.0, help="0.5 (slow) .. 2.0 (fast); default 1.0")
    speak.add_argument("--sample-rate", type=int, help="output sample rate in Hz (default: the voice's)")
    speak.add_argument(
        "--deterministic", action="store_true", help="no sampling noise: same text, same audio"
    )
    speak.set_defaults(handler=_speak)

    transcribe = sub.add_parser("transcribe", help="transcribe an audio file")
    transcribe.add_argument("file", type=Path, help="wav, flac, mp3, ogg, webm or m4a file")
    transcribe.add_argument("--language", help="language code; default: detect (English for .en models)")
    transcribe.add_argument("--words", action="store_true", help="include word timings (json)")
    transcribe.add_argument("--prompt", help="vocabulary or context to bias recognition")
    transcribe.add_argument(
        "--format", choices=get_args(TranscriptFormat), default="text", help="output format"
    )
    transcribe.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    transcribe.set_defaults(handler=_transcribe)
    for command in entry_points(group="speech_tools.commands"):  # commands of the layers above (eval)
        command.load()(sub)
    return parser


def _policy_check(args: argparse.Namespace, settings: Settings) -> int:
    from policies import PolicyFileError, load_policy

    try:
        config = load_policy(args.file)
    except PolicyFileError as exc:
        print(f"error [invalid_policy]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    tokens = sum(len(p.token_sha256) for p in config.principals)
    print(f"{args.file}: ok ({len(config.principals)} principals, {tokens} tokens)")
    return 0


def _policy_hash(args: argparse.Namespace, settings: Settings) -> int:
    from policies import token_hash

    token = sys.stdin.readline().strip()
    if not token:
        print("error [invalid_argument]: give the token on standard input", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(token_hash(token))
    return 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    from agent_tools.settings import settings_table

    print(settings_table())
    return 0


def _voices(args: argparse.Namespace, settings: Settings) -> int:
    synthesizer = build_synthesizer(settings.engines, resolve_device("cpu"), "catalog")
    wanted = (args.language or "").replace("-", "_").lower()
    voices = [v for v in synthesizer.voices() if v.language.lower().startswith(wanted)]
    if args.json:
        print(json.dumps([asdict(v) for v in voices], indent=2))
    else:
        for v in voices:
            print(f"{v.id}\t{v.language}\t{v.quality}\t{v.sample_rate} Hz\t{v.licence}")
    return 0


def _speak(args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    fmt = args.format or _output_format(args.output)
    service = _local_service(settings, speak=True)
    with _progress("speaking", unit="sentence") as bar:

        async def advance(done: float, total: float | None, message: str) -> None:
            bar.update(1)

        speech = anyio.run(
            lambda: service.speak(
                text,
                voice=args.voice,
                fmt=fmt,
                speed=args.speed,
                sample_rate=args.sample_rate,
                deterministic=args.deterministic,
                progress=advance,
            )
        )
    if str(args.output) == "-":
        sys.stdout.buffer.write(speech.data)
    else:
        args.output.write_bytes(speech.data)
        summary = f"{speech.duration:.2f} s, {speech.format}, {speech.sample_rate} Hz, voice {speech.voice}"
        print(f"{args.output}: {summary}", file=sys.stderr)
    return 0


def _output_format(output: Path) -> AudioFormat:
    """The format a `speak` output's suffix names (WAV for stdout or no suffix)."""
    return "wav" if str(output) == "-" or not output.suffix else format_for_suffix(output.suffix)


def _transcribe(args: argparse.Namespace, settings: Settings) -> int:
    data = _read_audio(args.file, settings.engines.audio.max_bytes)
    service = _local_service(settings, speak=False)
    with _progress("transcribing", unit="s") as bar:

        async def advance(done: float, total: float | None, message: str) -> None:
            bar.total = round(total or 0, 1)
            bar.n = round(done, 1)
            bar.refresh()

        heard = anyio.run(
            lambda: service.transcribe(
                AudioSource(data=data),
                language=args.language,
                word_timestamps=args.words,
                prompt=args.prompt,
                progress=advance,
            )
        )
    body = render(heard.transcript, args.format)
    if args.output is None:
        sys.stdout.write(body)
    else:
        args.output.write_text(body, encoding="utf-8")
    return 0


def reload_on_sighup(runtime: Any) -> None:
    """Re-read the policy file and the lexicon on SIGHUP (calls in flight keep what they started with)."""
    import signal

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda signum, frame: runtime.reload())


def _local_service(settings: Settings, *, speak: bool) -> SpeechService:
    """The service with only the engine a one-shot command needs, called as the local principal."""
    from agent_tools.core.engines import Engines
    from agent_tools.core.runtime import Runtime
    from policies import Policy

    piper = settings.engines.piper.model_copy(update={"busy_intra_op_threads": 0})  # no sentence beside
    engines = settings.engines.model_copy(update={"piper": piper})
    return Runtime.build(
        settings, Engines.load(engines, speak=speak, transcribe=not speak), policy=Policy()
    ).service


def _read_audio(path: Path, max_bytes: int) -> bytes:
    from speech_backend import InvalidArgument, PayloadTooLarge

    if not path.is_file():
        raise InvalidArgument(f"{path} is not a readable file; give the path of an audio file")
    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(f"{path} is {size} bytes, over the limit of {max_bytes}; send a shorter file")
    return path.read_bytes()


def _progress(description: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=description, unit=unit, file=sys.stderr, disable=None, leave=False)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import faulthandler

    from agent_tools.assembly import assemble
    from policies import AuditFileError, PolicyFileError
    from speech_backend.allocator import tune_allocator
    from speech_backend.lexicon import LexiconError

    faulthandler.enable()  # should a native library crash the process, its stack goes to stderr
    tune_allocator()  # before any worker thread: memory freed after a large call goes back

    if args.transport != "stdio":
        server = settings.server.model_copy(
            update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        )
        settings = settings.model_copy(update={"server": server})
    try:
        runtime = assemble(settings)
    except PolicyFileError as exc:
        print(f"error [invalid_policy]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (AuditFileError, LexiconError) as exc:
        print(f"error [invalid_configuration]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    reload_on_sighup(runtime)
    if args.transport == "stdio":
        from agent_tools.tools.server import build_server

        runtime.load()
        try:
            build_server(runtime).run("stdio")
        finally:
            runtime.policy.close()
        return 0
    from agent_tools.listeners import serve

    try:
        serve(runtime)
    except ValueError as exc:
        print(f"error [invalid_configuration]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
