"""Atomic, self-describing checkpoints and the RNG state that makes resume exact.

A checkpoint is one `torch.save`d dict of tensors and plain Python values:

    format_version, kind="nmtkit-checkpoint", nmtkit_version
    step, model, optimizer, schedule, scaler, rng, sampler, best, elapsed, nan_skipped, ...
    recipe (the resolved YAML text), tokenizer {joint, src, tgt: SentencePiece model bytes}

It is written to a temporary file in the same directory, flushed to disk and renamed over the
old one, so a crash at any moment leaves the previous checkpoint or the new one, never half of
one; a write that fails (disk full) is a CheckpointError and leaves the previous file. It is
loaded with `weights_only=True`: a file that would run code when unpickled is refused.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from nmtkit.errors import UserError
from nmtkit.paths import WriteError, atomic_write, atomic_write_text, write_error

FORMAT_VERSION = 1
KIND = "nmtkit-checkpoint"
CONTENTS = {"model": dict, "recipe": str, "tokenizer": dict}  # in every checkpoint, of these types
TRAINING_STATE = ("state", "optimizer", "schedule", "scaler", "sampler", "log_window", "rng")


class CheckpointError(UserError):
    """A checkpoint that cannot be read, or was not written by a compatible nmtkit."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically (temporary file, fsync, rename). A failed write
    (disk full, ...) is a CheckpointError and leaves the previous file at `path` as it was."""
    path = Path(path)
    payload = {"format_version": FORMAT_VERSION, "kind": KIND, **payload}
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except WriteError as exc:
        raise CheckpointError(
            f"{exc}. Free some space (or fix the folder) and run the same command again: "
            "training continues from the last checkpoint that was written"
        ) from None
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; every way it can be wrong is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # "Unsupported global" / "unsupported GLOBAL posix.system ... blocked": a callable or a
        # class, and calling it could do anything.
        if "global" in str(exc).lower():
            raise CheckpointError(
                f"{path} was refused: it holds objects other than tensors and plain values, and "
                "loading it could run code; nmtkit only opens plain checkpoints (weights_only)"
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch file)") from None
    except Exception as exc:  # torch raises many kinds (RuntimeError, KeyError, ...) for junk
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a checkpoint: "
            f"{(str(exc).splitlines() or [type(exc).__name__])[0][:120]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise CheckpointError(f"{path} is a PyTorch file but not an nmtkit checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path} is damaged: it has no checkpoint format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this nmtkit reads "
            f"({FORMAT_VERSION}); upgrade nmtkit"
        )
    wrong = [key for key, kind in CONTENTS.items() if not isinstance(payload.get(key), kind)]
    if wrong:
        raise CheckpointError(
            f"{path} is damaged: {', '.join(wrong)} missing or of the wrong type "
            f"(expected {', '.join(CONTENTS[k].__name__ for k in wrong)})"
        )
    return payload


def rng_state() -> dict[str, Any]:
    """Every random state training draws from (Python, NumPy's global, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class CheckpointKeeper:
    """last.pt at every save; best.pt following the best metric; the best N as step files.

    best.pt and step-NNNNNNN.pt are hard links to the last.pt written at that step (a copy
    where links fail): one write per save, and every name always points at a whole file.
    """

    def __init__(self, folder: Path, *, keep: int, higher_is_better: bool) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.higher_is_better = higher_is_better

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    def save(
        self, payload: dict[str, Any], *, step: int, value: float | None = None, best: bool = False
    ) -> None:
        """Write last.pt; with a validation `value`, also the step file, best.pt and pruning."""
        save_checkpoint(self.last, payload)
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
        for old in ranked[self.keep :]:
            (self.folder / old).unlink(missing_ok=True)
            del scores[old]
        atomic_write_text(scores_path, json.dumps(scores, indent=1) + "\n")

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


# ------------------------------------------------------------------------------- averaging

TRANSLATION_KEYS = ("recipe", "tokenizer", "vocab_size", "langs")  # what translate needs


def average_checkpoints(paths: list[Path], output: Path) -> dict[str, Any]:
    """Average the weights of checkpoints of one model (e.g. the last few of a run).

    The checkpoints must have the same parameters (names and shapes) and the same tokenizers.
    The result holds the averaged weights, plus the recipe and tokenizers of the first: enough
    to translate, not to resume training. Integer buffers are taken from the first checkpoint.
    """
    if len(paths) < 2:
        raise UserError("averaging needs at least two checkpoints")
    first_path, *rest = (Path(p) for p in paths)
    first = load_checkpoint(first_path)
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    steps = [first.get("step")]
    for path in rest:
        other = load_checkpoint(path)
        _check_same_model(first_path, first, path, other)
        for key, value in other["model"].items():
            if value.is_floating_point():
                total[key] += value.double()
        steps.append(other.get("step"))
    model = {
        k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v
        for k, v in total.items()
    }
    payload = {key: first[key] for key in TRANSLATION_KEYS}
    payload.update(model=model, step=first.get("step"), averaged_from=[str(p) for p in paths])
    payload["averaged_steps"] = steps
    save_checkpoint(output, payload)
    return payload


def _check_same_model(a_path: Path, a: dict[str, Any], b_path: Path, b: dict[str, Any]) -> None:
    shapes_a = {k: tuple(v.shape) for k, v in a["model"].items()}
    shapes_b = {k: tuple(v.shape) for k, v in b["model"].items()}
    if shapes_a != shapes_b:
        differ = sorted(set(shapes_a.items()) ^ set(shapes_b.items()))[:3]
        raise UserError(
            f"{a_path} and {b_path} are different models and cannot be averaged "
            f"(parameters differ, e.g. {', '.join(f'{k} {s}' for k, s in differ)})"
        )
    for side in ("src_sha256", "tgt_sha256"):
        if a["tokenizer"].get(side) != b["tokenizer"].get(side):
            raise UserError(
                f"{a_path} and {b_path} use different tokenizers and cannot be averaged"
            )
