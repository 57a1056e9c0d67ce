"""The run-directory contract: where every command reads and writes.

runs/<name>/
  recipe.resolved.yaml        the validated recipe, every default filled in
  data/                       written by `prepare`, replaced whole (never half-written)
    manifest.json             counts, lengths, tokenizer hashes, the recipe's data/tokenizer
    raw/{split}.{lang}        the generator's output (synthetic source only)
    text/{split}.{lang}       cleaned text, one sentence per line (references for scoring)
    spm.model | spm.{src,tgt}.model   SentencePiece model(s)
    shards/{split}.{src,tgt}.{bin,idx}
  checkpoints/                last.pt, best.pt, keep-N
  logs/metrics.jsonl
  tensorboard/                TensorBoard event files (a view of metrics.jsonl)
  translations/
  reports/                    <split>.json, <split>.png, training.png
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from nmtkit.errors import UserError

SIDES = ("src", "tgt")


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run directory, derived from its root. The prepared data lives in
    `<root>/data` unless the recipe's `data_dir` puts it elsewhere, to share it between runs."""

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
    def metrics(self) -> Path:
        return self.logs / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

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


def _read_umask() -> int:
    """The process's umask (only readable by setting it: set and restored at once, at import,
    before any thread of ours writes files)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file: mkstemp gives 0600


class WriteError(UserError):
    """A file could not be written (disk full, quota, permissions); the old one is intact."""


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that readers see the old content or the new, never a partial one:
    `write` fills a temporary file in the same directory (`.NAME.*.tmp`), which is given the
    mode a new file gets under the umask (not mkstemp's 0600), flushed to disk and renamed over
    `path`. On any error the temporary file is removed and `path` is
    untouched; an operating-system error (disk full, ...) becomes a WriteError naming `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            writer = _ErrorRecorder(f)
            try:
                write(cast(BinaryIO, writer))
            except Exception:
                if writer.error is not None:  # e.g. torch.save turns ENOSPC into RuntimeError
                    raise writer.error from None
                raise
            f.flush()
            if hasattr(os, "fchmod"):  # readable as any new file (e.g. by a serving account)
                os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


class _ErrorRecorder:
    """A binary file whose failed writes are remembered: libraries that write through a file
    object (torch.save) may report the OSError as something else, losing "disk full"."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:  # tell, seek, ... as the file has them
        return getattr(self.f, name)


def write_error(path: Path, exc: OSError) -> WriteError:
    """`could not write PATH: No space left on device (ENOSPC); ...`, one paragraph."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = f"{exc.strerror or exc}" + (f" ({name})" if name else "")
    kept = "the previous version is intact" if path.exists() else "nothing was written"
    return WriteError(f"could not write {path}: {reason}; {kept}")


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove the `.NAME.*.tmp` files that a killed process left in `folder`; returns them.
    Only call this while holding the run's lock (nobody else is writing there)."""
    found = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def partial_path(path: Path) -> Path:
    """`NAME.PID.partial`: one per process, so two runs writing the same output never share one."""
    return path.with_name(f"{path.name}.{os.getpid()}.partial")


@contextmanager
def partial_output(path: Path) -> Iterator[TextIO]:
    """A text output written line by line (`translate -o`, `score -o`), which may be too large
    for `atomic_write`'s one call: the block writes to `partial_path(path)`, which is fsynced
    and renamed over `path` when the block ends. Ctrl-C/SIGTERM (KeyboardInterrupt) keep the
    partial file, with the whole lines written so far; any other error removes it, and an
    operating-system error (disk full, ...) becomes a WriteError naming `path`."""
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "w", encoding="utf-8", newline="\n") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteError(
                f"{write_error(path, exc)}. Free some space (or fix the folder) and run the same "
                "command again"
            ) from None
        raise


@contextmanager
def run_lock(root: Path, command: str) -> Iterator[None]:
    """Hold an exclusive lock on `root/.lock` while `command` (`train`, `prepare`) works in the
    run directory, so that a second process on the same run is refused instead of interleaving
    its checkpoints with ours or replacing the data under it. The kernel releases the lock
    however the process dies (no stale locks after SIGKILL). Without `fcntl` (Windows), no lock."""
    with _flock(root, root / ".lock", command, shared=False, other="another process"):
        yield


@contextmanager
def data_lock(paths: RunPaths, command: str, *, shared: bool) -> Iterator[None]:
    """Lock a recipe's `data_dir` (a prepared data directory outside the run, which other runs
    may share) while `command` uses it: `prepare` exclusively, `train` shared (runs on one data
    directory train side by side, and a `prepare` of it waits for none of them: it is refused).
    The lock file is `.NAME.lock` beside the directory, since `prepare` replaces the directory
    whole. Data inside the run directory needs nothing beyond `run_lock`."""
    if paths.data_root is None:
        yield
        return
    data = paths.data
    lock = data.with_name(f".{data.name}.lock")
    with _flock(data, lock, command, shared=shared, other="an `nmtkit train` on this data"):
        yield


@contextmanager
def _flock(what: Path, lock: Path, command: str, *, shared: bool, other: str) -> Iterator[None]:
    """`flock` on `lock` for `what`; an exclusive holder writes who it is into the file, shared
    holders leave it empty (`other` names them when they block an exclusive one)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
    except OSError as exc:
        raise write_error(lock, exc) from None
    with handle:
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            who = f"`{holder}`" if holder else other
            instead = "another run_dir" if lock.name == ".lock" else "another data_dir"
            raise UserError(
                f"{what} is in use: {who} holds {lock}; wait for it to finish, stop it, or give "
                f"this run {instead}"
            ) from None
        handle.seek(0)
        handle.truncate()  # a shared holder: the name of a killed exclusive one, if any, goes
        if shared:
            yield
            return
        handle.write(f"nmtkit {command} (pid {os.getpid()})\n")
        handle.flush()
        try:
            yield
        finally:  # a shared holder after us must not be named as us
            handle.seek(0)
            handle.truncate()
