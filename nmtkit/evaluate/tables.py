"""An evaluation report (`nmtkit.evaluate.report.LengthReport`) as terminal tables and as JSON.

The tables show scores to one decimal with the half-width of their 95% bootstrap interval
(`27.3 ±1.1`), the p-value of each system against the first (`0.004 *`, starred below 0.05),
and `—` for a length bucket without sentences. The JSON has every number unrounded, with the
settings that produced it (bucket edges, bootstrap resamples, seed, sacrebleu signatures); an
empty length bucket's scores are null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.markup import escape

from nmtkit.console import make_table, out_console, print_table
from nmtkit.evaluate.report import SIGNIFICANCE_LEVEL, LengthReport, MetricScore, Scores
from nmtkit.evaluate.scores import BUCKET_METRICS, METRIC_NAMES
from nmtkit.paths import atomic_write_text

if TYPE_CHECKING:
    from rich.table import Table

EMPTY = "—"


def print_report(report: LengthReport) -> None:
    """Overall scores, BLEU and chrF by length bucket, a legend and the sacrebleu signatures."""
    print_table(overall_table(report))
    for metric in BUCKET_METRICS:
        print_table(bucket_table(report, metric))
    legend = f"±: half-width of the 95% bootstrap interval ({report.n_bootstrap} resamples)"
    if len(report.systems) > 1:
        legend += f"; p: paired bootstrap test against {report.systems[0]}, * p < 0.05"
    out_console.print(legend, markup=False, soft_wrap=True)
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


def report_to_dict(report: LengthReport) -> dict[str, Any]:
    """Every number of the report, unrounded; an empty bucket's scores are null."""
    return {
        "systems": list(report.systems),
        "baseline": report.systems[0],
        "sentences": report.sentences,
        "by": report.by,
        "edges": list(report.edges),
        "n_bootstrap": report.n_bootstrap,
        "seed": report.seed,
        "significance_level": SIGNIFICANCE_LEVEL,
        "signatures": dict(report.signatures),
        "overall": _scores_dict(report.overall),
        "buckets": [
            {
                "label": bucket.bucket.label,
                "min_words": bucket.bucket.min_words,
                "max_words": bucket.bucket.max_words,
                "sentences": bucket.sentences,
                "scores": (
                    dict.fromkeys(report.systems)
                    if bucket.scores is None
                    else _scores_dict(bucket.scores)
                ),
            }
            for bucket in report.buckets
        ],
    }


def write_report_json(report: LengthReport, path: Path) -> None:
    """`report_to_dict` as indented JSON, written atomically."""
    text = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)
    atomic_write_text(Path(path), text + "\n")


def _scores_dict(scores: Scores) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        name: {
            metric: {
                "score": score.score,
                "mean": score.mean,
                "ci95": [score.low, score.high],
                "p_value": score.p_value,
                "significant": score.significant,
            }
            for metric, score in by_metric.items()
        }
        for name, by_metric in scores.items()
    }
