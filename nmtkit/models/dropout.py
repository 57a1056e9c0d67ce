"""Dropout with the mask drawn by `torch.rand`: the same distribution as `nn.Dropout`, faster.

    drop = Dropout(0.2)          # a drop-in for nn.Dropout (no parameters, train/eval alike)
    y = drop(x)                  # training: x * (u >= p) / (1 - p), u ~ U[0, 1); eval: x
    y = dropout(x, 0.2, True)    # the functional form, like F.dropout

PyTorch's CPU dropout draws its mask with `bernoulli_`, which costs about 2.5 times as much as
drawing uniform numbers and comparing them (docs/dev/performance-notes.md); the decoder's step
loop calls dropout twice per step, so on the CPU this was about 8% of a training update. Each
element is kept with probability exactly 1 - p (u < 1 always, u >= 0 always), and the kept
ones are scaled by 1 / (1 - p), as `nn.Dropout` does. The random numbers come from torch's
generator of the tensor's device, so checkpointed RNG state keeps resume exact.

    drop = Dropout(0.2, variational=True)     # x [B, T, F]: one mask per sequence, [B, 1, F]
    mask = drop.draw_mask(B, F, device)       # or draw it yourself once ...
    y_t = apply_mask(x_t, mask)               # ... and apply it at every step
    words = WordDropout(0.1, "unk")           # whole tokens: ids -> <unk>, or zero embeddings

Variational dropout (Gal & Ghahramani 2016) drops the same features at every time step of a
sequence. Word dropout drops whole input tokens, never padding or BOS: replaced by <unk>
(Bowman et al. 2016) or with a zero embedding (Sennrich et al. 2016, Nematus). Both draw
nothing in eval mode or when p is 0, so a model with them off uses the random stream exactly
as one without them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmtkit.data.tokenizer import BOS_ID, PAD_ID, UNK_ID
from nmtkit.recipe import WordDropoutMode


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x with each element zeroed with probability p and the others scaled by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # fp32 uniforms whatever x's dtype: exact 1 - p, and bf16's own draws are slower
    keep = (torch.rand(x.shape, device=x.device) >= p).to(x.dtype)
    return x * keep.mul_(1.0 / (1.0 - p))


def apply_mask(x: Tensor, mask: Tensor | None) -> Tensor:
    """x [B, F] or [B, T, F] times a per-sequence mask [B, F] (from `Dropout.draw_mask`), shared
    by every position of a sequence; None: x unchanged."""
    if mask is None:
        return x
    mask = mask.to(x.dtype)
    return x * (mask.unsqueeze(1) if x.dim() == 3 else mask)


class Dropout(nn.Module):
    """`nn.Dropout` with a `torch.rand` mask (see the module docstring). `variational`: on
    x [B, T, F] one mask per sequence, [B, 1, F], shared along time (x of other shapes: one per
    element as usual; a step loop draws the mask once with `draw_mask` and uses `apply_mask`)."""

    def __init__(self, p: float = 0.5, *, variational: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.variational = variational

    def forward(self, x: Tensor) -> Tensor:
        if self.variational and x.dim() == 3:
            return apply_mask(x, self.draw_mask(x.size(0), x.size(2), x.device))
        return dropout(x, self.p, self.training)

    def draw_mask(self, batch: int, size: int, device: torch.device) -> Tensor | None:
        """One keep mask per sequence, [B, F] fp32, kept entries 1 / (1 - p): the same
        distribution as `dropout`. None (and no random numbers drawn) in eval mode or p == 0."""
        if not self.training or self.p == 0.0:
            return None
        keep = (torch.rand(batch, size, device=device) >= self.p).float()
        return keep.mul_(1.0 / (1.0 - self.p)) if self.p < 1.0 else keep

    def extra_repr(self) -> str:
        return f"p={self.p}, variational=True" if self.variational else f"p={self.p}"


class WordDropout(nn.Module):
    """Word dropout: in training each input token that is not padding or BOS is, with
    probability p, replaced by <unk> (`unk`) or has its embedding zeroed (`zero`).

        dropped = words.draw(ids)                 # [B, T] bool, or None (eval, p == 0)
        emb = words.lookup(embed, ids, dropped)   # [B, T, E]

    The decision (`draw`) and its use (`lookup`) are separate so that the decoder can draw a
    whole target's decisions once and hand each step its column. Not rescaled (a dropped token
    is a different input, not a scaled one).
    """

    def __init__(self, p: float = 0.0, mode: WordDropoutMode = "unk") -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"word dropout probability must be in [0, 1), got {p}")
        if mode not in ("unk", "zero"):
            raise ValueError(f"word dropout mode must be 'unk' or 'zero', got {mode!r}")
        self.p = p
        self.mode = mode

    def draw(self, ids: Tensor) -> Tensor | None:
        """ids (any shape) -> bool of the same shape, True where the token is dropped; None
        (and no random numbers drawn) in eval mode or p == 0."""
        if not self.training or self.p == 0.0:
            return None
        droppable = (ids != PAD_ID) & (ids != BOS_ID)
        return (torch.rand(ids.shape, device=ids.device) < self.p) & droppable

    def lookup(self, embed: nn.Embedding, ids: Tensor, dropped: Tensor | None) -> Tensor:
        """embed(ids) [..., E] with the `dropped` tokens (from `draw`) dropped."""
        if dropped is None:
            return embed(ids)
        if self.mode == "unk":
            return embed(ids.masked_fill(dropped, UNK_ID))
        return embed(ids).masked_fill(dropped.unsqueeze(-1), 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
