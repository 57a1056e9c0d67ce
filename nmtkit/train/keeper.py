"""Which checkpoint files a training run keeps (the format is `nmtkit.checkpoint`'s)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from nmtkit.checkpoint import Checkpoint, CheckpointError
from nmtkit.paths import atomic_write_text, write_error


class CheckpointKeeper:
    """last.pt at every save; best.pt following the best metric; the best `keep` and the most
    recent `keep_last` validated checkpoints as step files (the latter for `average_last`).

    best.pt and step-NNNNNNN.pt are hard links to the last.pt written at that step (a copy
    where links fail): one write per save, and every name always points at a whole file.
    """

    def __init__(
        self, folder: Path, *, keep: int, higher_is_better: bool, keep_last: int = 0
    ) -> None:
        self.folder, self.keep, self.higher_is_better = Path(folder), keep, higher_is_better
        self.keep_last = keep_last

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    def save(
        self, checkpoint: Checkpoint, *, step: int, value: float | None = None, best: bool = False
    ) -> None:
        """Write last.pt; with a validation `value`, also the step file, best.pt and pruning."""
        checkpoint.write(self.last)
        if value is not None:
            self.finish(step=step, value=value, best=best)

    def finish(self, *, step: int, value: float, best: bool) -> None:
        """What follows writing a validated last.pt: link best.pt and the step file, prune.

        Idempotent, so a resumed run calls it again for its last.pt: a process killed between
        writing last.pt and linking leaves the same files as one that was not."""
        names = ["best.pt"] if best else []
        for name in [*names, f"step-{step:07d}.pt"]:
            target = self.folder / name
            if not (target.exists() and os.path.samefile(self.last, target)):  # not yet done
                link_or_copy(self.last, target)
        self._prune(f"step-{step:07d}.pt", value)

    def _prune(self, name: str, value: float) -> None:
        scores_path = self.folder / "scores.json"
        scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
        scores[name] = value
        ranked = sorted(scores, key=lambda k: scores[k], reverse=self.higher_is_better)
        recent = sorted(scores, reverse=True)[: self.keep_last]  # zero-padded step numbers
        for old in ranked[self.keep :]:
            if old not in recent:
                (self.folder / old).unlink(missing_ok=True)
                del scores[old]
        atomic_write_text(scores_path, json.dumps(scores, indent=1) + "\n")

    def latest(self, n: int) -> list[Path]:
        """The `n` most recent validated checkpoints that are kept, oldest first."""
        scores_path = self.folder / "scores.json"
        names = sorted(json.loads(scores_path.read_text())) if scores_path.exists() else []
        return [self.folder / name for name in names[-n:] if (self.folder / name).exists()]

    def clear(self) -> None:
        for path in [*self.folder.glob("*.pt"), self.folder / "scores.json"]:
            path.unlink(missing_ok=True)


def link_or_copy(src: Path, dst: Path) -> None:
    """Make `dst` name the file `src` atomically (hard link; a copy where links fail)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(str(write_error(dst, exc))) from None
