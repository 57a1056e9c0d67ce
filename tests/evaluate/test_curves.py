"""The training curves (`reports/training.png`) drawn from hand-written metrics logs: a whole
log, one without validation yet, a resumed one, a missing or empty one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmtkit.evaluate.curves import read_curves, write_training_plot
from nmtkit.paths import RunPaths

SAMPLES = [{"src": "the dog", "ref": "der Hund", "hyp": "der Hund"}]


def train(step: int, elapsed: float, loss: float = 3.0) -> dict:
    return {
        "kind": "train",
        "step": step,
        "epoch": 1,
        "loss": loss,
        "ppl": 2.0**loss,
        "lr": 0.001,
        "tgt_tokens": 200,
        "tok_per_s": 1000,
        "elapsed": elapsed,
        "nan_skipped": 0,
    }


def valid(step: int, bleu: float, **extra: object) -> dict:
    return {
        "kind": "valid",
        "step": step,
        "loss": 2.5,
        "ppl": 12.2,
        "bleu": bleu,
        "chrf": bleu + 10,
        "best": bleu,
        "best_step": step,
        "samples": SAMPLES,
        **extra,
    }


def write_log(root: Path, records: list[dict], tail: str = "") -> RunPaths:
    paths = RunPaths(root)
    paths.logs.mkdir(parents=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    paths.metrics.write_text(lines + tail, encoding="utf-8")
    return paths


def assert_png(path: Path | None) -> None:
    from matplotlib.image import imread

    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape[:2] == (750, 1300)  # 13 x 7.5 inches at 100 dpi


def test_a_log_is_drawn_as_a_png(tmp_path: Path) -> None:
    records = [train(2, 1.0), train(4, 2.0), valid(4, 10.0, elapsed=2.0)]
    records += [train(6, 3.5), train(8, 4.5), valid(8, 20.0, elapsed=4.5)]
    paths = write_log(tmp_path, records)
    written = write_training_plot(paths)
    assert written == paths.reports / "training.png"
    assert_png(written)


def test_a_log_without_validation_yet_is_drawn(tmp_path: Path) -> None:
    paths = write_log(tmp_path, [train(2, 1.0), train(4, 2.0)])
    assert_png(write_training_plot(paths))


def test_a_resumed_log_keeps_the_records_of_the_continuation(tmp_path: Path) -> None:
    """A killed run's records past its checkpoint (step 4) are replaced by the resumed run's,
    as TensorBoard's purge replaces its events; a line cut short is skipped."""
    killed = [train(2, 1.0), train(4, 2.0), valid(4, 10.0, elapsed=2.0), train(6, 3.0, loss=9.0)]
    resumed = [train(6, 2.9), train(8, 3.9), valid(8, 20.0, elapsed=3.9)]
    paths = write_log(tmp_path, killed + resumed, tail='{"kind": "train", "st')
    curves = read_curves(paths.metrics)
    assert [(r["step"], r["loss"]) for r in curves.train] == [(2, 3), (4, 3), (6, 3), (8, 3)]
    assert [r["step"] for r in curves.valid] == [4, 8]
    assert_png(write_training_plot(paths))


def test_wall_time_is_the_logged_clock_or_the_train_clock_at_the_step(tmp_path: Path) -> None:
    """Validation records of older logs have no `elapsed`: the train clock is interpolated."""
    records = [train(4, 2.0), train(6, 3.0), valid(5, 10.0), valid(6, 12.0, elapsed=3.2)]
    curves = read_curves(write_log(tmp_path, records).metrics)
    assert [curves.seconds(r) for r in curves.valid] == [2.5, 3.2]
    assert curves.seconds(curves.train[0]) == 2.0
    clockless = read_curves(write_log(tmp_path / "v", [valid(5, 1.0)]).metrics)
    assert clockless.seconds(clockless.valid[0]) is None  # the wall-time row stays empty


def test_a_long_run_is_drawn_in_hours(tmp_path: Path) -> None:
    records = [train(1000, 3600.0), valid(1000, 5.0, elapsed=3600.0), train(2000, 9000.0)]
    assert_png(write_training_plot(write_log(tmp_path, records)))


@pytest.mark.parametrize(("content", "reason"), [(None, "does not exist"), ("{", "no records")])
def test_nothing_to_draw_is_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    paths = RunPaths(tmp_path)
    if content is not None:
        paths.logs.mkdir()
        paths.metrics.write_text(content, encoding="utf-8")
    assert write_training_plot(paths) is None
    assert not (paths.reports / "training.png").exists()
    err = " ".join(capsys.readouterr().err.split())
    assert "no training curves" in err and reason in err
