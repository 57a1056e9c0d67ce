"""The run-directory contract: where every command reads and writes.

runs/<name>/
  recipe.resolved.yaml        the validated recipe, every default filled in
  data/                       written by `prepare`, replaced whole (never half-written);
                              the recipe's `data_dir` may move it out to share it between runs
    manifest.json             counts, lengths, tokenizer hashes, the recipe's data/tokenizer
    raw/{split}.{lang}        the generator's output (synthetic source only)
    text/{split}.{lang}       cleaned text, one sentence per line (references for scoring)
    spm.model | spm.{src,tgt}.model   SentencePiece model(s)
    shards/{split}.{src,tgt}.{bin,idx}
  checkpoints/                last.pt, best.pt, keep-N
  logs/metrics.jsonl
  translations/
  reports/
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SPLITS = ("train", "valid", "test")
SIDES = ("src", "tgt")


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run directory, derived from its root. The prepared data lives in
    `<root>/data` unless the recipe's `data_dir` puts it elsewhere, so that several runs
    (e.g. the systems of `recipes/length-study/`) share one prepared corpus."""

    root: Path
    data_root: Path | None = None

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.resolved.yaml"

    @property
    def data(self) -> Path:
        return self.data_root if self.data_root is not None else self.root / "data"

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def translations(self) -> Path:
        return self.root / "translations"

    @property
    def reports(self) -> Path:
        return self.root / "reports"


@dataclass(frozen=True)
class DataPaths:
    """The layout inside a prepared data directory (final or being staged)."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def raw(self, split: str, lang: str) -> Path:
        return self.root / "raw" / f"{split}.{lang}"

    def text(self, split: str, lang: str) -> Path:
        return self.root / "text" / f"{split}.{lang}"

    def spm_prefix(self, side: str | None) -> Path:
        """`spm` for a joint vocabulary (side None), `spm.src` / `spm.tgt` otherwise."""
        return self.root / ("spm" if side is None else f"spm.{side}")

    def shard(self, split: str, side: str) -> Path:
        """Path prefix of one shard; the files are `<prefix>.bin` and `<prefix>.idx`."""
        return self.root / "shards" / f"{split}.{side}"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that readers see the old content or the new, never a partial one:
    `write` fills a temporary file in the same directory, which is flushed to disk and renamed
    over `path`. On any error the temporary file is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
