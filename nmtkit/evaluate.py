"""Scoring translations with sacrebleu: corpus BLEU and chrF on detokenized text, with signatures.

Training's validation uses `score_corpus`, so the numbers in the training log are computed
exactly as `nmtkit evaluate` computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nmtkit.errors import UserError


@dataclass(frozen=True)
class CorpusScores:
    """Corpus-level scores and the sacrebleu signature of each metric."""

    bleu: float
    chrf: float
    sentences: int
    signatures: dict[str, str] = field(default_factory=dict)


def score_corpus(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScores:
    """BLEU (13a tokenization, mixed case) and chrF of detokenized hypotheses vs references."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hyps) != len(refs):
        raise UserError(f"{len(hyps)} hypotheses but {len(refs)} references; they must align")
    bleu, chrf = BLEU(), CHRF()
    hyp_list, ref_lists = list(hyps), [list(refs)]
    return CorpusScores(
        bleu=bleu.corpus_score(hyp_list, ref_lists).score,
        chrf=chrf.corpus_score(hyp_list, ref_lists).score,
        sentences=len(hyps),
        signatures={"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
    )
