"""An evaluation report (`nmtkit.evaluate.report.LengthReport`) as JSON.

Every number is written unrounded, with the settings that produced it (bucket edges, bootstrap
resamples, seed, sacrebleu signatures); an empty length bucket's scores are null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nmtkit.evaluate.report import SIGNIFICANCE_LEVEL, LengthReport, MetricScore, Scores
from nmtkit.paths import atomic_write_text


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
        name: {metric: _score_dict(score) for metric, score in by_metric.items()}
        for name, by_metric in scores.items()
    }


def _score_dict(score: MetricScore) -> dict[str, Any]:
    return {
        "score": score.score,
        "mean": score.mean,
        "ci95": [score.low, score.high],
        "p_value": score.p_value,
        "significant": score.significant,
    }
