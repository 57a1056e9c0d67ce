"""Label-smoothed cross entropy over the real (non-pad) target tokens.

With smoothing ε over V classes the target distribution puts 1 - ε on the reference token and
ε / V on every class (Szegedy et al. 2016; as `F.cross_entropy(label_smoothing=ε)`):

    loss = (1 - ε) * nll + ε * mean_v(-log p_v)

The smoothed loss (optimised) and the plain NLL (for perplexity) come from one log-softmax.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from nmtkit.data.tokenizer import PAD_ID
from nmtkit.models.decoder import OutputLayer


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


def projected_loss(
    hidden: Tensor,
    output: OutputLayer,
    target: Tensor,
    smoothing: float,
    *,
    chunk_rows: int | None = None,
) -> LossSums:
    """`token_loss(output(hidden), target, smoothing)` without the whole [N, V] logits.

    hidden [N, H] are the attentional vectors of the real target tokens (see
    `Seq2Seq.forward(project=False)`), target [N]. The output layer and the loss run a chunk
    of `chunk_rows` rows at a time (default: `chunk_rows_for`), fused in one autograd node
    whose gradients equal the unfused ones (tested). Matrix products run in the autocast
    dtype when autocast is on; log-sum-exp and the softmax gradient are always fp32.
    """
    x, proj = output.pre(hidden), output.proj
    rows = chunk_rows or chunk_rows_for(proj.out_features, x.device)
    loss, nll = _ProjectedLoss.apply(
        x, proj.weight, proj.bias, target, smoothing, rows, torch.is_grad_enabled()
    )
    tokens = torch.tensor(target.numel(), device=target.device)
    return LossSums(loss=loss, nll=nll.detach(), tokens=tokens)


def chunk_rows_for(vocab: int, device: torch.device) -> int:
    """Rows per chunk: on the CPU about CPU_CHUNK_ELEMENTS logits (a chunk stays in cache);
    on a GPU a large chunk (fewer kernel launches) that still bounds memory at large V."""
    if device.type == "cpu":
        return max(16, CPU_CHUNK_ELEMENTS // vocab)
    return max(256, GPU_CHUNK_ELEMENTS // vocab)


CPU_CHUNK_ELEMENTS = 1 << 18  # 1 MiB of fp32 logits
GPU_CHUNK_ELEMENTS = 1 << 26  # 256 MiB of fp32 logits


class _ProjectedLoss(torch.autograd.Function):
    """Output projection + label-smoothed cross entropy, a chunk of rows at a time.

    The [N, V] logits never exist whole: each chunk's logits, log-sum-exp and softmax
    gradient are made and consumed while they are in cache, and the gradients of x, W and b
    are computed in the forward pass (the loss is the graph's end, so only a scalar scale is
    left for backward; under no_grad none are computed). Without it, the unfused loss's
    backward zero-fills and copies [N, V] buffers several times.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        target: Tensor,
        smoothing: float,
        chunk_rows: int,
        with_grad: bool,
    ) -> tuple[Tensor, Tensor]:
        device = x.device.type
        mm_dtype = torch.promote_types(x.dtype, weight.dtype)
        if torch.is_autocast_enabled(device):
            mm_dtype = torch.get_autocast_dtype(device)
        need_grad = with_grad and any(ctx.needs_input_grad[:3])
        w = weight.to(mm_dtype)
        b = None if bias is None else bias.to(mm_dtype)
        vocab = weight.size(0)
        loss = torch.zeros((), dtype=torch.float32, device=x.device)
        nll = torch.zeros((), dtype=torch.float32, device=x.device)
        grad_x = grad_w = grad_b = None
        if need_grad:
            grad_x = x.new_empty(x.shape, dtype=torch.float32)
            grad_w = x.new_zeros(weight.shape, dtype=torch.float32)
            grad_b = x.new_zeros(vocab, dtype=torch.float32)
        with torch.autocast(device, enabled=False):
            for start in range(0, x.size(0), chunk_rows):
                rows = x[start : start + chunk_rows].to(mm_dtype)
                tgt = target[start : start + chunk_rows, None]
                logits = (rows @ w.t() if b is None else torch.addmm(b, rows, w.t())).float()
                lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # [n, 1]
                token_nll = lse - logits.gather(-1, tgt)  # [n, 1]
                nll += token_nll.sum()
                if smoothing:
                    smooth = lse.sum() - logits.sum() / vocab  # sum of mean_v(-log p_v)
                    loss += (1 - smoothing) * token_nll.sum() + smoothing * smooth
                else:
                    loss += token_nll.sum()
                if grad_x is None or grad_w is None or grad_b is None:
                    continue
                # d loss / d logits = softmax - (1 - ε) onehot(target) - ε / V
                grad = logits.sub_(lse).exp_()
                grad.scatter_add_(-1, tgt, grad.new_full(tgt.shape, -(1 - smoothing)))
                if smoothing:
                    grad.sub_(smoothing / vocab)
                grad_b += grad.sum(0)
                grad = grad.to(mm_dtype)
                grad_x[start : start + chunk_rows] = grad @ w
                grad_w += grad.t() @ rows
        ctx.mark_non_differentiable(nll)
        ctx.save_for_backward(grad_x, grad_w, grad_b)
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return loss, nll

    @staticmethod
    def backward(ctx: Any, scale: Tensor, _nll: Tensor) -> tuple[Tensor | None, ...]:
        # needs_input_grad[:3] (x, weight, bias; False for no bias) implies the grads were made
        grads = zip(ctx.saved_tensors, ctx.dtypes, ctx.needs_input_grad[:3], strict=True)
        out = [(grad * scale).to(dtype) if need else None for grad, dtype, need in grads]
        return (*out, None, None, None, None)
