"""An evaluation report: scores of one or more systems, overall and by sentence length.

`build_report` scores systems against the references, on the whole corpus and on length
buckets (by source or by reference length in words, `nmtkit.evaluate.buckets`), with
sacrebleu's 95% bootstrap intervals and paired bootstrap p-values of every system against the
first (`nmtkit.evaluate.significance`):

    report = build_report({"base": base_hyps, "new": new_hyps}, refs, srcs, by="source")
    report.buckets[0].scores["new"]["bleu"].p_value

The report is shown by `nmtkit.evaluate.tables`, written by `nmtkit.evaluate.export` and
drawn by `nmtkit.evaluate.plot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nmtkit.errors import UserError
from nmtkit.evaluate.buckets import (
    DEFAULT_EDGES,
    LengthBucket,
    bucket_index,
    check_by,
    check_edges,
    make_buckets,
    word_count,
)
from nmtkit.evaluate.scores import BUCKET_METRICS, METRIC_NAMES, new_metric
from nmtkit.evaluate.significance import (
    bootstrap_scores,
    confidence_interval,
    corpus_score,
    paired_p_value,
    resample_counts,
    sacrebleu_seed,
    sentence_stats,
)
from nmtkit.recipe import LengthBy

if TYPE_CHECKING:
    from sacrebleu.metrics.base import Metric

SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class MetricScore:
    """One metric of one system on one group of sentences, with its 95% bootstrap interval
    `mean ± half_width` (sacrebleu's) and, for every system but the first, the paired
    bootstrap p-value of its difference from the first."""

    score: float
    mean: float
    half_width: float
    p_value: float | None = None

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def significant(self) -> bool | None:
        """Whether the system differs from the first at p < 0.05; None for the first."""
        return None if self.p_value is None else self.p_value < SIGNIFICANCE_LEVEL


Scores = dict[str, dict[str, MetricScore]]  # system name -> metric key -> score


@dataclass(frozen=True)
class BucketScores:
    """The systems' scores on the sentences of one length bucket; None when it has none."""

    bucket: LengthBucket
    sentences: int
    scores: Scores | None


@dataclass(frozen=True)
class LengthReport:
    """Every number of an evaluation: overall scores, scores by length bucket, significance."""

    systems: tuple[str, ...]  # the first is the baseline of the significance tests
    by: LengthBy
    edges: tuple[int, ...]
    sentences: int
    n_bootstrap: int
    seed: int | None  # SACREBLEU_SEED; None: drawn from the OS, not reproducible
    signatures: dict[str, str]  # metric key -> sacrebleu signature (with bs and seed)
    overall: Scores
    buckets: tuple[BucketScores, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric keys scored on the whole corpus, in display order."""
        return tuple(self.overall[self.systems[0]])


def build_report(
    systems: Mapping[str, Sequence[str]],
    refs: Sequence[str],
    srcs: Sequence[str] | None = None,
    *,
    by: LengthBy = "source",
    edges: Sequence[int] = DEFAULT_EDGES,
    n_bootstrap: int = 1000,
    ter: bool = True,
) -> LengthReport:
    """Score detokenized systems (name -> hypotheses, in order; the first is the baseline)
    against `refs`, overall (BLEU, chrF and, with `ter`, TER) and per length bucket (BLEU, chrF),
    the buckets cut at `edges` by `source` (needs `srcs`) or `reference` length in words."""
    _check_aligned(systems, refs, srcs, by)
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    edges = check_edges(edges)
    seed = sacrebleu_seed()
    metrics = {key: new_metric(key, refs) for key in METRIC_NAMES if ter or key != "ter"}
    stats = {
        key: {name: sentence_stats(metric, hyps) for name, hyps in systems.items()}
        for key, metric in metrics.items()
    }
    texts = srcs if by == "source" and srcs is not None else refs
    lengths = [word_count(text) for text in texts]
    where = [bucket_index(edges, n) for n in lengths]
    bucket_metrics = {key: metrics[key] for key in BUCKET_METRICS}
    buckets = []
    for i, bucket in enumerate(make_buckets(edges)):
        rows = [row for row, b in enumerate(where) if b == i]
        scores = _score_group(bucket_metrics, stats, rows, n_bootstrap, seed) if rows else None
        buckets.append(BucketScores(bucket, len(rows), scores))
    return LengthReport(
        systems=tuple(systems),
        by=by,
        edges=edges,
        sentences=len(refs),
        n_bootstrap=n_bootstrap,
        seed=seed,
        signatures={key: _signature(m, n_bootstrap, seed) for key, m in metrics.items()},
        overall=_score_group(metrics, stats, list(range(len(refs))), n_bootstrap, seed),
        buckets=tuple(buckets),
    )


def _check_aligned(
    systems: Mapping[str, Sequence[str]],
    refs: Sequence[str],
    srcs: Sequence[str] | None,
    by: str,
) -> None:
    if check_by(by) == "source" and srcs is None:
        raise UserError(
            "scores by source length need the source sentences (--src FILE); "
            "or bucket by reference length (--by reference)"
        )
    if not systems:
        raise UserError("no system to evaluate")
    if not refs:
        raise UserError("nothing to evaluate: there are no references")
    sides = {f"system {name!r}": len(hyps) for name, hyps in systems.items()}
    if srcs is not None:
        sides["the source"] = len(srcs)
    wrong = [f"{side} has {n}" for side, n in sides.items() if n != len(refs)]
    if wrong:
        raise UserError(f"there are {len(refs)} references but " + ", ".join(wrong) + " lines")


def _score_group(
    metrics: Mapping[str, Metric],
    stats: Mapping[str, Mapping[str, np.ndarray]],
    rows: list[int],
    n_bootstrap: int,
    seed: int | None,
) -> Scores:
    """Every system's scores on the sentences `rows`, each system resampled with the same
    draws, and p-values of each against the first."""
    counts = resample_counts(len(rows), n_bootstrap, seed)
    scores: Scores = {}
    for key, metric in metrics.items():
        base: tuple[float, np.ndarray] | None = None  # the first system: score, resampled
        for name, system_stats in stats[key].items():
            group = system_stats[rows]
            score = corpus_score(metric, group)
            resampled = bootstrap_scores(metric, group, counts)
            p_value = None
            if base is None:
                base = (score, resampled)
            else:
                p_value = paired_p_value(base[0], score, base[1], resampled)
            mean, half_width = confidence_interval(resampled)
            scores.setdefault(name, {})[key] = MetricScore(score, mean, half_width, p_value)
    return scores


def _signature(metric: Metric, n_bootstrap: int, seed: int | None) -> str:
    """The metric's sacrebleu signature with the resampling settings, as PairedTest writes it."""
    signature = metric.get_signature()
    signature.update("bs", n_bootstrap)
    signature.update("seed", str(seed).lower())
    return str(signature)
