"""The score-by-length plot of an evaluation report (the classic Bahdanau/Luong figure).

One line per system across the length buckets, with error bars from the 95% bootstrap
intervals and a star above a bucket where a system differs from the first at p < 0.05. The
number of sentences per bucket is under its label and drawn as a light grey bar (right axis).
An empty bucket is a gap in the lines, never a zero. matplotlib is imported only when drawing,
with its Agg canvas (no pyplot, no display, no global backend switch).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from nmtkit.errors import UserError
from nmtkit.evaluate.report import LengthReport, MetricScore
from nmtkit.evaluate.scores import METRIC_NAMES
from nmtkit.paths import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FORMATS = ("png", "svg", "pdf")
SYSTEM_SHIFT = 0.08  # x offset between systems, in buckets, so error bars do not overlap


def plot_report(report: LengthReport, path: Path, *, metric: str = "bleu") -> None:
    """Draw `metric` (bleu or chrf) by length bucket and write it atomically to `path`, as PNG,
    or SVG/PDF when the file name ends so."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fmt = plot_format(path)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_counts(ax, report)
    for i, name in enumerate(report.systems):
        _draw_system(ax, report, name, metric, shift=(i - (len(report.systems) - 1) / 2))
    labels = [f"{b.bucket.label}\nn={b.sentences}" for b in report.buckets]
    ax.set_xticks(range(len(report.buckets)), labels)
    ax.set_xlabel(f"{report.by} length (words)")
    ax.set_ylabel(METRIC_NAMES[metric])
    title = f"{METRIC_NAMES[metric]} by {report.by} length"
    if len(report.systems) > 1:
        title += f"  (* p < 0.05 against {report.systems[0]})"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best")
    atomic_write(Path(path), lambda f: fig.savefig(f, format=fmt, dpi=150))


def plot_format(path: Path) -> str:
    """`png`, `svg` or `pdf` from the file name (`png` without a suffix), else a UserError."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise UserError(f"cannot write a plot as {Path(path).name}: use a .png, .svg or .pdf file")
    return fmt


def _draw_counts(ax: Axes, report: LengthReport) -> None:
    """Sentence counts as light bars on a right-hand axis, drawn behind the score lines."""
    counts = ax.twinx()
    sizes = [b.sentences for b in report.buckets]
    counts.bar(range(len(sizes)), sizes, width=0.6, color="0.9")
    counts.set_ylim(0, 3 * max(sizes))  # the bars fill the lower third, under the lines
    counts.set_ylabel("sentences", color="0.5")
    counts.tick_params(axis="y", colors="0.5")
    ax.set_zorder(counts.get_zorder() + 1)  # lines in front of the bars
    ax.patch.set_visible(False)


def _draw_system(ax: Axes, report: LengthReport, name: str, metric: str, shift: float) -> None:
    """One system's line with asymmetric error bars (the interval is around the bootstrap mean,
    not the score) and stars where it differs significantly from the first system."""
    scores: list[MetricScore | None] = [
        None if b.scores is None else b.scores[name][metric] for b in report.buckets
    ]
    xs = [i + shift * SYSTEM_SHIFT for i in range(len(scores))]
    ys = [math.nan if s is None else s.score for s in scores]
    below = [0.0 if s is None else max(s.score - s.low, 0.0) for s in scores]
    above = [0.0 if s is None else max(s.high - s.score, 0.0) for s in scores]
    ax.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=3, label=name)
    for x, s, up in zip(xs, scores, above, strict=True):
        if s is not None and s.significant:
            ax.annotate("*", (x, s.score + up), ha="center", va="bottom")
