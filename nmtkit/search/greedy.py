"""Greedy decoding: at every step the most probable next token, for a whole batch at once.

Uses only the model's `encode` and the decoder's `init_state` / `step` interface. A sentence
stops at EOS or at its own maximum length, `ceil(max_len_ratio * source length) + min_len`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from nmtkit.models import Seq2Seq

MIN_EXTRA_TOKENS = 5  # a very short source may still need a few target tokens


def max_lengths(src_lens: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per-sentence output budget (tokens, EOS included)."""
    return (src_lens.double() * ratio).ceil().long() + MIN_EXTRA_TOKENS


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_lens: torch.Tensor, *, max_len_ratio: float
) -> list[list[int]]:
    """Token ids (without BOS/EOS) of the greedy translation of each source sentence."""
    enc = model.encode(src, src_lens)
    state = model.decoder.init_state(enc)
    limits = max_lengths(src_lens, max_len_ratio).to(src.device)
    steps = int(limits.max())
    batch = src.size(0)
    tokens = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=src.device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    for t in range(steps):
        log_probs, state, _ = model.decoder.step(prev, state, enc)
        prev = log_probs.argmax(-1).masked_fill(done, PAD_ID)
        tokens[:, t] = prev
        done |= (prev == EOS_ID) | (t + 1 >= limits)
        if t % 8 == 7 and bool(done.all()):  # a host sync every few steps, not every step
            break
    return [_strip(row) for row in tokens.tolist()]


def _strip(ids: list[int]) -> list[int]:
    """Drop everything from the first EOS (or padding) on."""
    out = []
    for i in ids:
        if i in (EOS_ID, PAD_ID):
            break
        out.append(i)
    return out
