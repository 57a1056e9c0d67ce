"""Greedy decoding over the search interface: the most probable next token, a batch at once.

A sentence stops at EOS or at its maximum length (`max_lengths`), where EOS is forced, as beam
search does: beam 1 equals greedy. All sentences run every step until all are done: greedy
steps are cheap, and shrinking the batch would need a host sync every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmtkit.models import Seq2Seq
from nmtkit.search.hypothesis import Hypothesis, max_lengths, strip_special
from nmtkit.search.model import SearchModel, as_search_model


@torch.no_grad()
def greedy_search(
    model: Seq2Seq | Sequence[Seq2Seq] | SearchModel,
    src: torch.Tensor,
    src_lens: torch.Tensor,
    *,
    max_len_ratio: float,
) -> list[list[int]]:
    """Token ids (without BOS/EOS) of the greedy translation of each source sentence."""
    return [h.tokens for h in greedy_hypotheses(model, src, src_lens, max_len_ratio=max_len_ratio)]


@torch.no_grad()
def greedy_hypotheses(
    model: Seq2Seq | Sequence[Seq2Seq] | SearchModel,
    src: torch.Tensor,
    src_lens: torch.Tensor,
    *,
    max_len_ratio: float,
) -> list[Hypothesis]:
    """The greedy translation of each sentence with its log-probability (EOS included).

    src [B, S] (EOS-terminated, padded), src_lens [B]. `score` equals `log_prob` (no length
    penalty: there is nothing to rank).
    """
    search = as_search_model(model)
    enc = search.encode(src, src_lens)
    state = search.init_state(enc)
    limits = max_lengths(src_lens, max_len_ratio).to(src.device)
    steps = int(limits.max())
    batch = src.size(0)
    tokens = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=src.device)
    total = torch.zeros(batch, dtype=torch.float32, device=src.device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for t in range(steps):
        log_probs, state, _ = search.step(prev, state, enc)  # [B, V]
        prev = log_probs.argmax(-1).masked_fill(t + 1 >= limits, EOS_ID)
        total += log_probs.gather(1, prev.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0)
        prev = prev.masked_fill(done, PAD_ID)
        tokens[:, t] = prev
        done |= prev == EOS_ID
        if t % 8 == 7 and bool(done.all()):  # a host sync every few steps, not every step
            break
    return [
        Hypothesis(tokens=strip_special(row), score=score, log_prob=score)
        for row, score in zip(tokens.tolist(), total.tolist(), strict=True)
    ]
