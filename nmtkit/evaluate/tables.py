"""An evaluation report (`nmtkit.evaluate.report.LengthReport`) as terminal tables.

The tables show scores to one decimal with the half-width of their 95% bootstrap interval
(`27.3 ±1.1`), the p-value of each system against the first (`0.004 *`, starred below 0.05),
and `—` for a length bucket without sentences. `nmtkit.evaluate.export` writes every number
unrounded, as JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape

from nmtkit.console import make_table, out_console, print_table
from nmtkit.evaluate.report import LengthReport, MetricScore
from nmtkit.evaluate.scores import BUCKET_METRICS, METRIC_NAMES

if TYPE_CHECKING:
    from rich.table import Table

EMPTY = "—"


def print_report(report: LengthReport) -> None:
    """Overall scores, BLEU and chrF by length bucket, a legend and the sacrebleu signatures."""
    print_table(overall_table(report))
    for metric in BUCKET_METRICS:
        print_table(bucket_table(report, metric))
    out_console.print(_legend(report), markup=False, soft_wrap=True)
    for metric, signature in report.signatures.items():
        out_console.print(
            f"{METRIC_NAMES[metric]} signature: {signature}", markup=False, soft_wrap=True
        )


def overall_table(report: LengthReport) -> Table:
    """One row per system; one column per metric, each followed by its p-value column."""
    compared = len(report.systems) > 1
    columns = ["System"]
    for metric in report.metrics:
        columns += [METRIC_NAMES[metric]] + (["p"] if compared else [])
    rows = []
    for name in report.systems:
        row = [escape(name)]
        for metric in report.metrics:
            score = report.overall[name][metric]
            row += [_score_cell(score)] + ([_p_cell(score)] if compared else [])
        rows.append(row)
    return _table(f"Scores on {report.sentences} sentences", columns, rows)


def bucket_table(report: LengthReport, metric: str) -> Table:
    """One row per length bucket: its sentence count, then each system's score (and p-value)."""
    columns = ["Length", "Sentences"]
    for i, name in enumerate(report.systems):
        columns += [escape(name)] + (["p"] if i > 0 else [])
    rows = []
    for bucket in report.buckets:
        row = [bucket.bucket.label, str(bucket.sentences)]
        for i, name in enumerate(report.systems):
            score = None if bucket.scores is None else bucket.scores[name][metric]
            row += [_score_cell(score)] + ([_p_cell(score)] if i > 0 else [])
        rows.append(row)
    return _table(f"{METRIC_NAMES[metric]} by {report.by} length in words", columns, rows)


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """A table without vertical rules: three systems with p-values fit 80 columns unwrapped."""
    table = make_table(title, columns)
    table.box = box.SIMPLE_HEAD
    for row in rows:
        table.add_row(*row)
    return table


def _score_cell(score: MetricScore | None) -> str:
    return EMPTY if score is None else f"{score.score:.1f} ±{score.half_width:.1f}"


def _p_cell(score: MetricScore | None) -> str:
    if score is None or score.p_value is None:
        return EMPTY
    return f"{score.p_value:.3f}" + (" *" if score.significant else "")


def _legend(report: LengthReport) -> str:
    legend = f"±: half-width of the 95% bootstrap interval ({report.n_bootstrap} resamples)"
    if len(report.systems) > 1:
        legend += f"; p: paired bootstrap test against {report.systems[0]}, * p < 0.05"
    return legend
