"""Seeing training as it goes: TensorBoard events that mirror metrics.jsonl (also across a
resume), the curve plot at the end, and training without tensorboard installed or switched off."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nmtkit.train.tensorboard import EVENT_FILES, INSTALL_NOTE, SAMPLES_TAG, samples_table
from tests.conftest import one_line, run_cli
from tests.train.test_train import copy_run, prepared_run

__all__ = ["prepared_run"]  # the fixture, shared with test_train

TAGS = {f"train/{key}" for key in ("loss", "ppl", "lr", "tok_per_s")}
TAGS |= {f"valid/{key}" for key in ("loss", "ppl", "bleu", "chrf")}
PNG = b"\x89PNG\r\n\x1a\n"


def read_events(folder: Path) -> Any:
    """Every event under `folder`, as TensorBoard would show them."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_events_mirror_the_log_across_a_resume_and_the_curves_are_drawn(
    prepared_run: Path, tmp_path: Path
) -> None:
    """Trained to step 4, then resumed to 8 in the same directory. Events that a killed run
    wrote after the checkpoint (a stale step 6) are hidden by the resumed writer."""
    from torch.utils.tensorboard import SummaryWriter

    recipe = copy_run(prepared_run, tmp_path / "tb")
    run, board = tmp_path / "tb" / "run", tmp_path / "tb" / "run" / "tensorboard"
    first = run_cli("train", recipe, "--set", "train.max_steps=4")
    assert first.exit_code == 0, first.stderr
    with SummaryWriter(str(board)) as stale:
        stale.add_scalar("train/loss", 999.0, 6)
    time.sleep(1.1)  # event files are named by the second they were opened in, then sorted
    resumed = run_cli("train", recipe)
    assert resumed.exit_code == 0, resumed.stderr
    assert len(list(board.glob(EVENT_FILES))) == 3

    events = read_events(board)
    assert set(events.Tags()["scalars"]) == TAGS
    train, valid = records(run, "train"), records(run, "valid")
    for kind, logged in (("train", train), ("valid", valid)):
        for key in ("loss", "ppl", "tok_per_s", "lr") if kind == "train" else ("bleu", "chrf"):
            got = [(e.step, e.value) for e in events.Scalars(f"{kind}/{key}")]
            want = [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in logged]
            assert got == want, (kind, key)
    assert [r["step"] for r in train] == [2, 4, 6, 8] and [r["step"] for r in valid] == [4, 8]
    texts = events.Tensors(f"{SAMPLES_TAG}/text_summary")
    assert [t.step for t in texts] == [4, 8]
    table = texts[-1].tensor_proto.string_val[0].decode()
    assert table == samples_table(valid[-1]["samples"])
    assert table.startswith("| src | ref | hyp |") and valid[-1]["samples"][0]["src"] in table

    plot = run / "reports" / "training.png"
    assert plot.read_bytes()[:8] == PNG
    assert "training.png" in one_line(resumed.stderr)


def test_tensorboard_false_writes_no_events(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "off")
    args = ["--set", "train.tensorboard=false", "--set", "train.max_steps=2"]
    result = run_cli("train", recipe, *args)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "off" / "run"
    assert not list((run / "tensorboard").glob(EVENT_FILES))
    assert INSTALL_NOTE not in one_line(result.stderr)
    assert (run / "reports" / "training.png").read_bytes()[:8] == PNG


def test_training_without_tensorboard_installed_says_so_once(
    prepared_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` now raises ImportError
    recipe = copy_run(prepared_run, tmp_path / "none")
    result = run_cli("train", recipe, "--set", "train.max_steps=2")
    assert result.exit_code == 0, result.stderr
    assert one_line(result.stderr).count(INSTALL_NOTE) == 1
    run = tmp_path / "none" / "run"
    assert not list((run / "tensorboard").glob(EVENT_FILES))
    assert [r["step"] for r in records(run, "valid")] == [2]


def test_samples_stay_in_their_table_cells() -> None:
    table = samples_table([{"src": "a | b", "ref": "x\ny", "hyp": ""}])
    assert table.splitlines() == ["| src | ref | hyp |", "|---|---|---|", r"| a \| b | x y |   |"]


def test_the_command_line_does_not_load_tensorboard_or_matplotlib() -> None:
    code = (
        "import sys, nmtkit, nmtkit.cli, nmtkit.train.loop; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorboard', 'matplotlib'}), "
        "'torch.utils.tensorboard' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False"]
