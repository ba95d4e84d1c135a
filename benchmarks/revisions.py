"""An earlier revision of the server beside the current one in the same run: a git worktree of the
revision, put first on the server's `PYTHONPATH` (the installed environment is shared)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The last revision before priority admission, lead-ins and per-call costs: "before" in the tables.
BEFORE_SCHEDULER = "e60f292"


@contextmanager
def revision_env(revision: str) -> Iterator[dict[str, str]]:
    """Environment for `start_server` that runs `revision`'s code; the worktree is removed after."""
    with tempfile.TemporaryDirectory(prefix="speech-tools-rev-") as parent:
        tree = Path(parent) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run(
            [*git, "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True
        )
        try:
            yield {"PYTHONPATH": str(tree)}
        finally:
            subprocess.run(
                [*git, "worktree", "remove", "--force", str(tree)], check=False, capture_output=True
            )


def short(revision: str) -> str:
    """The abbreviated commit id of `revision`."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def labelled_settings(spec: str) -> tuple[str, dict[str, str]]:
    """`LABEL:KEY=VALUE,...` (a benchmark's `--also`): a server of the current code with those
    settings, under that label."""
    label, _, pairs = spec.partition(":")
    return label, dict(pair.split("=", 1) for pair in pairs.split(",") if pair)


def side_by_side(env: dict[str, str]) -> dict[str, str]:
    """`env` for a server started beside others: the current code's gRPC listener on any free port
    (its default port is one per machine); a revision from before gRPC is left as it is."""
    if "PYTHONPATH" in env or "SPEECH_TOOLS_SERVER__GRPC_PORT" in env:
        return env
    return {**env, "SPEECH_TOOLS_SERVER__GRPC_PORT": "0"}
