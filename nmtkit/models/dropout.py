"""Dropout with the mask drawn by `torch.rand`: the same distribution as `nn.Dropout`, faster.

    drop = Dropout(0.2)          # a drop-in for nn.Dropout (no parameters, train/eval alike)
    y = drop(x)                  # training: x * (u >= p) / (1 - p), u ~ U[0, 1); eval: x
    y = dropout(x, 0.2, True)    # the functional form, like F.dropout

PyTorch's CPU dropout draws its mask with `bernoulli_`, which costs about 2.5 times as much as
drawing uniform numbers and comparing them (docs/benchmarks.md, "train"); the decoder's step
loop calls dropout twice per step, so on the CPU this was about 8% of a training update. Each
element is kept with probability exactly 1 - p (u < 1 always, u >= 0 always), and the kept
ones are scaled by 1 / (1 - p), as `nn.Dropout` does. The random numbers come from torch's
generator of the tensor's device, so checkpointed RNG state keeps resume exact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x with each element zeroed with probability p and the others scaled by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = (torch.rand_like(x) >= p).to(x.dtype)
    return x * keep.mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """`nn.Dropout` with a `torch.rand` mask (see the module docstring)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
