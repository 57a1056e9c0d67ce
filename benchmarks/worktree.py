"""A git revision checked out beside this one, for before/after measurements (ab_*.py)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def revision_checkout(rev: str) -> Iterator[Path]:
    """`rev` checked out into a temporary git worktree (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="nmtkit-before-") as tmp:
        path = Path(tmp) / "checkout"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), rev],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO)
