"""Checkpoint files: atomic, safe to load, and every kind of bad file a clear error."""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch

from nmtkit.checkpoint import (
    Checkpoint,
    CheckpointError,
    TokenizerModels,
    TrainingState,
    TrainState,
    rng_state,
    set_rng_state,
)
from nmtkit.train.keeper import CheckpointKeeper


def plain(step: int | None = None, **model: torch.Tensor) -> Checkpoint:
    """A checkpoint with the parts every checkpoint has (weights, recipe, tokenizers)."""
    tokenizer = TokenizerModels(
        joint=True, src=b"\x00spm", tgt=b"\x00spm", src_sha256="a", tgt_sha256="a"
    )
    return Checkpoint(model, "name: x\n", tokenizer, ("en", "de"), (8, 8), step=step)


def test_round_trip_with_bytes_and_rng(tmp_path: Path) -> None:
    state = rng_state()
    written = plain(step=7, w=torch.arange(3))
    written.training = TrainingState(TrainState(step=7), {}, {}, {}, {"epoch": 1}, {}, [state])
    written.write(tmp_path / "c.pt")
    checkpoint = Checkpoint.read(tmp_path / "c.pt")
    assert checkpoint.step == 7 and checkpoint.tokenizer.src == b"\x00spm"
    assert torch.equal(checkpoint.model["w"], torch.arange(3))
    assert checkpoint.training is not None and checkpoint.training.state == TrainState(step=7)
    assert checkpoint.training.sampler == {"epoch": 1} and len(checkpoint.training.rng) == 1
    assert (checkpoint.langs, checkpoint.vocab_sizes) == (("en", "de"), (8, 8))
    draws = (random.random(), np.random.rand(), torch.rand(2))
    set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert draws[:2] == again[:2] and torch.equal(draws[2], again[2])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


class Evil:
    def __reduce__(self) -> tuple:
        return (print, ("this would run on load",))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("truncated", "is not a readable checkpoint"),
        ("junk", "is not a readable checkpoint"),
        ("code", "was refused"),
        ("newer", "newer than this nmtkit reads"),
        ("foreign", "not an nmtkit checkpoint"),
        ("empty", r"is not a readable checkpoint \(truncated or not a checkpoint: EOFError\)"),
        ("damaged", "is damaged: recipe missing or of the wrong type"),
    ],
)
def test_bad_checkpoints(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.pt"
    if content == "truncated":
        plain(w=torch.zeros(1000)).write(path)
        path.write_bytes(path.read_bytes()[:3000])
    elif content == "junk":
        path.write_bytes(b"not a checkpoint at all")
    elif content == "code":
        torch.save({"x": Evil()}, path)
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "damaged":
        torch.save(
            {"kind": "nmtkit-checkpoint", "format_version": 1, "model": {}, "tokenizer": {}}, path
        )
    elif content == "newer":
        torch.save({"kind": "nmtkit-checkpoint", "format_version": 99}, path)
    else:
        torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=expected):
        Checkpoint.read(path)


def test_parts_that_do_not_fit_together_are_a_checkpoint_error(tmp_path: Path) -> None:
    """The right top-level types, but a tokenizer entry without its models or hashes."""
    path = tmp_path / "odd.pt"
    torch.save(
        {
            "kind": "nmtkit-checkpoint",
            "format_version": 1,
            "model": {},
            "recipe": "name: x\n",
            "tokenizer": {"joint": True},
        },
        path,
    )
    with pytest.raises(CheckpointError, match="is damaged: its contents do not fit together"):
        Checkpoint.read(path)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.read(tmp_path / "none.pt")


def test_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    plain(step=1).write(path)

    def disk_full(obj: object, f: BinaryIO) -> None:  # the disk fills half way through
        f.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError) as failure:
        plain(step=2).write(path)
    monkeypatch.undo()
    message = str(failure.value)
    assert f"could not write {path}: No space left on device (ENOSPC)" in message
    assert "the previous version is intact" in message and "\n" not in message
    assert Checkpoint.read(path).step == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_keeper_keeps_best_n_and_links_best(tmp_path: Path) -> None:
    keeper = CheckpointKeeper(tmp_path, keep=2, higher_is_better=True)
    best = None
    for step, bleu in ((10, 5.0), (20, 9.0), (30, 7.0), (40, 8.0)):
        improved = best is None or bleu > best
        best = bleu if improved else best
        keeper.save(plain(step=step), step=step, value=bleu, best=improved)
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == [
        "step-0000020.pt",
        "step-0000040.pt",
    ]
    assert Checkpoint.read(tmp_path / "best.pt").step == 20
    assert Checkpoint.read(tmp_path / "last.pt").step == 40
    keeper.save(plain(step=41), step=41)  # last only
    assert Checkpoint.read(tmp_path / "last.pt").step == 41
    assert Checkpoint.read(tmp_path / "step-0000040.pt").step == 40


WRITE_BOTH = """
import sys, torch
from pathlib import Path
from nmtkit.checkpoint import Checkpoint, TokenizerModels
from nmtkit.paths import atomic_write_text
folder = Path(sys.argv[1])
tokenizer = TokenizerModels(True, b"spm", b"spm", "a", "a")
checkpoint = Checkpoint({"w": torch.zeros(2)}, "name: x\\n", tokenizer, ("en", "de"), (8, 8))
checkpoint.write(folder / "c.pt")
atomic_write_text(folder / "scores.json", "{}\\n")
"""


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_mode_of_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Not mkstemp's 0600: a checkpoint or a JSON file is readable as any new file would be
    (e.g. by the account that serves the model)."""
    import os
    import stat
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-c", WRITE_BOTH, str(tmp_path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        preexec_fn=lambda: os.umask(umask),  # before the child imports anything
        check=True,
        timeout=120,
    )
    for name in ("c.pt", "scores.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
