"""What search returns, and the length rules greedy and beam search share."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from nmtkit.data.tokenizer import EOS_ID, PAD_ID

MIN_EXTRA_TOKENS = 5  # a very short source may still need a few target tokens


@dataclass(frozen=True)
class Hypothesis:
    """One finished translation of one sentence."""

    tokens: list[int]  # target ids, without BOS and EOS
    score: float  # log_prob / length penalty: what beam search ranks by
    log_prob: float  # sum of the token log-probabilities, EOS included
    attention: Tensor | None = None  # [len(tokens) + 1, source length]: one row per output token


def max_lengths(src_lens: Tensor, ratio: float) -> Tensor:
    """Per-sentence output budget: ceil(ratio * source length) + MIN_EXTRA_TOKENS tokens,
    EOS included."""
    return (src_lens.double() * ratio).ceil().long() + MIN_EXTRA_TOKENS


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty lp(len) = ((5 + len) / 6) ** alpha (Wu et al. 2016); alpha 0: off."""
    return ((5.0 + length) / 6.0) ** alpha


def strip_special(ids: list[int]) -> list[int]:
    """Drop everything from the first EOS (or padding) on."""
    return ids[: next((n for n, i in enumerate(ids) if i in (EOS_ID, PAD_ID)), len(ids))]
