"""An evaluation report: scores of one or more systems, overall and by sentence length.

`build_report` scores systems against the references, on the whole corpus and on length
buckets, with sacrebleu's 95% bootstrap intervals and paired bootstrap p-values of every system
against the first:

    report = build_report({"base": base_hyps, "new": new_hyps}, refs, srcs, by="source")
    report.buckets[0].scores["new"]["bleu"].p_value

Length buckets group sentences by their length in whitespace-separated words (of the source or
of the reference). Edges `e1 < e2 < ... < en` give n+1 buckets:

    [10, 20, 30]  ->  "≤10" (0-10)   "11-20"   "21-30"   "31+"

Empty lines (0 words) fall in the first bucket. The edges follow the recipe's
`evaluate.buckets` rule (positive, strictly increasing), checked by the recipe's own model.

The bootstrap works on cached statistics: sacrebleu's `corpus_score(..., n_bootstrap=N)` and
`PairedTest(test_type="bs")` tokenize and count n-grams again on every call: on 2000 sentences
and 3 systems one PairedTest of BLEU and chrF takes ~6 s, and a report runs one per length
bucket plus one on the whole corpus. Here each system's per-sentence sufficient statistics are
extracted once (`sentence_stats`) and every group of sentences is a subset of their rows.

The resampling is sacrebleu's, number for number:

- the same draws: `numpy.random.default_rng(seed).choice(n, size=(N, n))`, the seed read from
  `SACREBLEU_SEED` (default 12345, so results are deterministic; "none" draws from the OS);
  every system of a group sees the same N resamples, as in sacrebleu's paired test;
- the same 95% interval (`sacrebleu.significance.estimate_ci`): mean of the N resampled scores
  ± half the distance between the 2.5th and 97.5th percentile resamples;
- the same p-value (Koehn 2004, as in Moses' `bootstrap-hypothesis-difference-significance.pl`):
  how often the centred resampled difference |sys - base| exceeds the observed one, (c+1)/(N+1).

One deliberate difference: when both systems score the same on every resample (identical
output), the p-value is 1, where sacrebleu reports 1/(N+1), i.e. "significant".
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast, get_args

import numpy as np
from pydantic import ValidationError

from nmtkit.errors import UserError
from nmtkit.evaluate.scores import BUCKET_METRICS, METRIC_NAMES, new_metric
from nmtkit.recipe import EvaluateConfig, LengthBy

if TYPE_CHECKING:
    from sacrebleu.metrics.base import Metric

DEFAULT_EDGES: tuple[int, ...] = (10, 20, 30, 40, 50)
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class LengthBucket:
    """A range of sentence lengths in words, both ends included; `max_words` None is open."""

    label: str
    min_words: int
    max_words: int | None


def check_by(by: str) -> LengthBy:
    """`by` itself when it is one of `LengthBy` (`source` or `reference`), else a UserError."""
    choices = get_args(LengthBy)
    if by not in choices:
        names = " or ".join(repr(choice) for choice in choices)
        raise UserError(f"length buckets are by {names}, not {by!r}")
    return cast(LengthBy, by)


def check_edges(edges: Sequence[int]) -> tuple[int, ...]:
    """The edges as a tuple, or a UserError if they break the recipe's `evaluate.buckets` rule."""
    try:
        return tuple(EvaluateConfig(buckets=list(edges)).buckets)
    except ValidationError as exc:
        reasons = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
        raise UserError(f"bad length bucket edges {list(edges)}: {reasons}") from None


def parse_edges(text: str) -> tuple[int, ...]:
    """`"10,20,30"` -> (10, 20, 30), checked by `check_edges`."""
    try:
        edges = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"bad length bucket edges {text!r}: give increasing word counts separated by "
            "commas, e.g. 10,20,30,40,50"
        ) from None
    return check_edges(edges)


def make_buckets(edges: Sequence[int]) -> tuple[LengthBucket, ...]:
    """The n+1 buckets that n checked edges delimit, labelled `≤e1`, `e1+1-e2`, ..., `en+1+`."""
    edges = check_edges(edges)
    buckets = [LengthBucket(f"≤{edges[0]}", 0, edges[0])]
    for low, high in itertools.pairwise(edges):
        label = str(high) if high == low + 1 else f"{low + 1}-{high}"
        buckets.append(LengthBucket(label, low + 1, high))
    buckets.append(LengthBucket(f"{edges[-1] + 1}+", edges[-1] + 1, None))
    return tuple(buckets)


def bucket_index(edges: Sequence[int], words: int) -> int:
    """Which of `make_buckets(edges)` holds a sentence of `words` words."""
    return bisect.bisect_left(edges, words)


def sacrebleu_seed() -> int | None:
    """The resampling seed, read from SACREBLEU_SEED exactly as sacrebleu reads it."""
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    return None if seed.lower() == "none" else int(seed)


def sentence_stats(metric: Metric, hyps: Sequence[str]) -> np.ndarray:
    """Per-sentence sufficient statistics, shape (sentences, stats), against the references the
    metric was built with (`BLEU(references=[refs])`, cached once for all systems)."""
    rows = metric._extract_corpus_statistics(list(hyps), None)
    return np.asarray(rows, dtype=np.float64).reshape(len(hyps), -1)


def resample_counts(n: int, n_samples: int, seed: int | None) -> np.ndarray:
    """How often each of n sentences is drawn in each of `n_samples` bootstrap resamples,
    shape (n_samples, n); the draws are sacrebleu's for the same n, n_samples and seed."""
    draws = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)
    offsets = np.arange(n_samples)[:, None] * n  # one bincount for all resamples at once
    return np.bincount((draws + offsets).ravel(), minlength=n_samples * n).reshape(n_samples, n)


def bootstrap_scores(metric: Metric, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The corpus score of every resample: stats (sentences, stats), counts (N, sentences) -> (N,).
    Statistics are integer counts, so float64 sums equal sacrebleu's float32 ones exactly."""
    totals = counts @ stats  # (N, stats): each resample's summed statistics
    return np.array([metric._compute_score_from_stats(row).score for row in totals])


def paired_p_value(
    base_score: float, sys_score: float, base_scores: np.ndarray, sys_scores: np.ndarray
) -> float:
    """p-value of the paired bootstrap test that two systems differ: scores on the full sample,
    then on the same N resamples (N,) each."""
    diffs = np.abs(sys_scores - base_scores)
    if not diffs.any():
        return 1.0  # same score on every resample: no evidence of any difference
    exceed = int(np.sum(diffs - diffs.mean() > abs(sys_score - base_score)))
    return (exceed + 1) / (len(diffs) + 1)


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
    where = [bucket_index(edges, len(text.split())) for text in texts]
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
    systems: Mapping[str, Sequence[str]], refs: Sequence[str], srcs: Sequence[str] | None, by: str
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
    draws, and p-values of each against the first. The interval is sacrebleu's `estimate_ci`."""
    from sacrebleu.significance import estimate_ci

    counts = resample_counts(len(rows), n_bootstrap, seed)
    scores: Scores = {}
    for key, metric in metrics.items():
        base: tuple[float, np.ndarray] | None = None  # the first system: score, resampled
        for name, system_stats in stats[key].items():
            group = system_stats[rows]
            score = float(metric._compute_score_from_stats(group.sum(axis=0)).score)
            resampled = bootstrap_scores(metric, group, counts)
            p_value = None
            if base is None:
                base = (score, resampled)
            else:
                p_value = paired_p_value(base[0], score, base[1], resampled)
            mean, half = estimate_ci(resampled)
            scores.setdefault(name, {})[key] = MetricScore(score, float(mean), float(half), p_value)
    return scores


def _signature(metric: Metric, n_bootstrap: int, seed: int | None) -> str:
    """The metric's sacrebleu signature with the resampling settings, as PairedTest writes it."""
    signature = metric.get_signature()
    signature.update("bs", n_bootstrap)
    signature.update("seed", str(seed).lower())
    return str(signature)
