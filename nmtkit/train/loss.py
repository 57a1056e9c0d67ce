"""Label-smoothed cross entropy over the real (non-pad) target tokens.

With smoothing ε over V classes, the target distribution puts 1 - ε on the reference token and
ε / V on every class (Szegedy et al. 2016; the same definition as
`torch.nn.functional.cross_entropy(label_smoothing=ε)`):

    loss = (1 - ε) * nll + ε * mean_v(-log p_v)

Both the smoothed loss (what is optimised) and the plain negative log-likelihood (what
perplexity reports) come from one log-softmax.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from nmtkit.data.tokenizer import PAD_ID


class LossSums(NamedTuple):
    """Sums over the real target tokens of a batch (divide by `tokens` for means)."""

    loss: torch.Tensor  # smoothed, differentiable
    nll: torch.Tensor  # detached
    tokens: torch.Tensor  # detached


def sequence_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> LossSums:
    """logits [B,T,V] (any float dtype), target [B,T] with PAD_ID at padding."""
    mask = target != PAD_ID
    return token_loss(logits[mask], target[mask], smoothing)


def token_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> LossSums:
    """logits [N,V] of real tokens only (see `Seq2Seq.forward(positions=...)`), target [N]."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = nll if smoothing == 0 else (1 - smoothing) * nll - smoothing * log_probs.mean(-1)
    tokens = torch.tensor(target.numel(), device=target.device)
    return LossSums(loss=loss.sum(), nll=nll.detach().sum(), tokens=tokens)
