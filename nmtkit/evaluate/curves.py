"""Training curves: `RUN_DIR/reports/training.png`, drawn from `RUN_DIR/logs/metrics.jsonl`.

A 2 x 3 grid: loss (train and valid), perplexity (train and valid; a log scale when it spans
a factor of 10 or more) and the valid BLEU and chrF, against the update step (top row) and
against the training wall clock (bottom row). Training draws it when it ends, however it ends
(rank 0), and `nmtkit evaluate RUN` draws it again. A log with no validation yet gives empty
BLEU panels; a missing or empty log, a one-line note and no figure.

The log is the one source; its records are `nmtkit.train.progress`'s (kind `train`: step, loss,
ppl, lr, tok_per_s, elapsed; kind `valid`: step, loss, ppl, bleu, chrf, samples, elapsed) and
are read here by those keys only, leniently: a line cut short by a killed process is skipped,
and if the steps of one kind go back (a log that a resumed run did not truncate), the later
records replace the earlier ones from that step on, as TensorBoard's purge does. The train
loss is the label-smoothed training objective, the valid loss plain NLL; the perplexities are
both exp(NLL) and compare like with like.

Wall time is each record's `elapsed`: seconds of training since the run began, summed over
resumes (a resumed run continues the clock saved in `last.pt`, so the time a run was stopped
is not counted, nor the updates lost after its last checkpoint). Validation records without it
(logs written before it was recorded there) get the train records' clock interpolated at their
step. matplotlib (the `plot` extra) is imported only when drawing, with its Agg canvas;
without it, `write_training_plot` says so in one line and draws nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nmtkit.console import info
from nmtkit.extras import has_extra, note_skipped
from nmtkit.paths import RunPaths, atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Record = dict[str, Any]
# (panel title, [(record kind, key)]) for each column of the figure
PANELS = (
    ("loss", [("train", "loss"), ("valid", "loss")]),
    ("perplexity", [("train", "ppl"), ("valid", "ppl")]),
    ("valid BLEU / chrF", [("valid", "bleu"), ("valid", "chrf")]),
)
LABELS = {"bleu": "BLEU", "chrf": "chrF"}
STYLES: dict[str, dict[str, Any]] = {
    "train": {"linewidth": 1.0},
    "valid": {"marker": "o", "markersize": 3},
}


@dataclass
class Curves:
    """The train and valid records of one metrics log, each kind in step order."""

    train: list[Record] = field(default_factory=list)
    valid: list[Record] = field(default_factory=list)

    def records(self, kind: str) -> list[Record]:
        return self.train if kind == "train" else self.valid

    def seconds(self, record: Record) -> float | None:
        """The training wall clock at a record (see the module docstring), or None."""
        if isinstance(record.get("elapsed"), (int, float)):
            return float(record["elapsed"])
        clock = [(r["step"], r["elapsed"]) for r in self.train if "elapsed" in r]
        if not clock:
            return None
        import numpy as np

        steps, elapsed = zip(*clock, strict=True)
        return float(np.interp(record["step"], steps, elapsed))


def read_curves(path: Path) -> Curves:
    """The records of a metrics log (see the module docstring); an empty Curves without one."""
    curves = Curves()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return curves
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
            continue
        if record.get("kind") in ("train", "valid"):
            kept = curves.records(record["kind"])
            kept[:] = [r for r in kept if r["step"] < record["step"]]  # a restart's purge
            kept.append(record)
    return curves


def write_training_plot(paths: RunPaths) -> Path | None:
    """Draw the run's metrics log into `reports/training.png`; the path written, or None
    (with a one-line note) when the log is missing or has no records yet, or matplotlib is
    not installed."""
    if not has_extra("plot"):
        note_skipped("training curves (reports/training.png)", "plot")
        return None
    curves, out = read_curves(paths.metrics), paths.reports / "training.png"
    if not (curves.train or curves.valid):
        reason = "has no records yet" if paths.metrics.exists() else "does not exist"
        info(f"no training curves: {paths.metrics} {reason}")
        return None
    plot_curves(curves, out, title=f"{paths.root.name}: training curves")
    info(f"wrote {out}")
    return out


def plot_curves(curves: Curves, path: Path, *, title: str = "training") -> None:
    """The 2 x 3 grid of the module docstring, written atomically to `path` as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(PANELS), squeeze=False)
    unit, per = _time_unit(curves)
    empty = "no validation yet" if not curves.valid else "no wall time in the log"
    for col, (panel, lines) in enumerate(PANELS):
        for row, xlabel in enumerate(("update step", f"training wall time ({unit})")):
            ax = axes[row][col]
            drawn = [_draw_line(ax, curves, kind, key, per if row else None) for kind, key in lines]
            _finish_axes(ax, panel, xlabel, empty=None if any(drawn) else empty)
    fig.suptitle(title)
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=100))


def _draw_line(ax: Axes, curves: Curves, kind: str, key: str, per: float | None) -> bool:
    """One kind's `key` against the step (`per` None) or the wall clock in units of `per`
    seconds; whether there was anything to draw."""
    points = []
    for record in curves.records(kind):
        value = record.get(key)
        x = record["step"] if per is None else curves.seconds(record)
        if isinstance(value, (int, float)) and math.isfinite(value) and x is not None:
            points.append((x if per is None else x / per, value))
    if not points:
        return False
    xs, ys = zip(*points, strict=True)
    label = f"{kind} {LABELS[key]}" if key in LABELS else kind
    ax.plot(xs, ys, label=label, **STYLES[kind])
    return True


def _finish_axes(ax: Axes, title: str, xlabel: str, *, empty: str | None) -> None:
    """Title, labels, grid and legend; `empty`: the note shown instead of lines."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if empty is not None:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
        return
    low, high = ax.dataLim.y0, ax.dataLim.y1
    if title == "perplexity" and low > 0 and high >= 10 * low:  # a log scale where it spans
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")


def _time_unit(curves: Curves) -> tuple[str, float]:
    """Seconds, minutes or hours, whichever suits the run's length: (name, seconds per unit)."""
    clocks = [curves.seconds(r) for r in (*curves.train, *curves.valid)]
    longest = max((c for c in clocks if c is not None), default=0.0)
    if longest >= 2 * 3600:
        return "hours", 3600.0
    return ("minutes", 60.0) if longest >= 120 else ("seconds", 1.0)
