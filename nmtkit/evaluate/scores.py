"""Corpus scores with sacrebleu: BLEU, chrF and TER on detokenized text.

Training's validation uses `score_corpus`, so the numbers in the training log are computed
exactly as `nmtkit evaluate` computes them (both take their metrics from `new_metric`). This
module imports only sacrebleu (when scoring), never torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nmtkit.errors import UserError

if TYPE_CHECKING:
    from sacrebleu.metrics.base import Metric

METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER"}  # key -> display name
BUCKET_METRICS = ("bleu", "chrf")  # TER is scored on the whole corpus only: it is slow


@dataclass(frozen=True)
class CorpusScores:
    """Corpus-level scores and the sacrebleu signature of each metric."""

    bleu: float
    chrf: float
    sentences: int
    signatures: dict[str, str] = field(default_factory=dict)


def new_metric(name: str, refs: Sequence[str] | None = None) -> Metric:
    """The sacrebleu metric `bleu` (13a tokenization, mixed case), `chrf` (chrF2) or `ter`, with
    sacrebleu's default settings; with `refs`, their statistics are cached for many systems."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    references = None if refs is None else [list(refs)]
    if name == "bleu":
        return BLEU(references=references)
    if name == "chrf":
        return CHRF(references=references)
    if name == "ter":
        return TER(references=references)
    raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRIC_NAMES)}")


def score_corpus(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScores:
    """BLEU (13a tokenization, mixed case) and chrF of detokenized hypotheses vs references."""
    if len(hyps) != len(refs):
        raise UserError(f"{len(hyps)} hypotheses but {len(refs)} references; they must align")
    bleu, chrf = new_metric("bleu"), new_metric("chrf")
    hyp_list, ref_lists = list(hyps), [list(refs)]
    return CorpusScores(
        bleu=bleu.corpus_score(hyp_list, ref_lists).score,
        chrf=chrf.corpus_score(hyp_list, ref_lists).score,
        sentences=len(hyps),
        signatures={"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
    )
