"""Attention: a query (decoder state) and the encoder output -> a context vector and weights.

    attn = make_attention("luong_general", hidden_size=256, heads=4)
    context, weights = attn(query, enc)     # query [B, H] -> [B, H], [B, S]
    context, weights = attn(queries, enc)   # queries [B, T, H] -> [B, T, H], [B, T, S]

One small class per type; each docstring gives the paper and the formula, with q the query
(decoder state), k_j = v_j the encoder state at source position j, and
a_j = softmax_j(score(q, k_j)) over the real (unpadded) positions, context c = Σ_j a_j v_j.

Masks are True at real tokens; padded positions get a score of -inf before the softmax, so their
weight is exactly 0. Scores are normalised in fp32 (also under autocast), so masks stay exact.
Keys that do not depend on the query are projected once per sentence (`project_keys`, stored
in `EncoderOutput.keys` by `Seq2Seq.encode`), not once per decoder step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmtkit.models.encoder import EncoderOutput
from nmtkit.recipe import AttentionKind


class AttentionOutput(NamedTuple):
    context: Tensor  # [B, H] or [B, T, H]
    weights: Tensor | None  # [B, S] or [B, T, S], fp32; None for NoAttention


class Attention(nn.Module):
    """Base class: handles one query [B, H] or a block of queries [B, T, H].

    Subclasses implement `_attend` for a block; `before_cell` says whether the decoder queries
    with its previous state before the RNN step (Bahdanau) or with its new state after it.
    """

    before_cell = False

    def forward(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        """query [B, H] or [B, T, H] -> context of the same shape, weights [B, (T,) S].

        A query [B*K, H] against an encoder output of B sentences is K queries per sentence
        (rows b*K .. b*K+K-1 belong to sentence b; beam search's beams): they are attended as
        a block [B, K, H], so the encoder output is read once per sentence, not once per beam.
        """
        _check_query(query, enc)
        if query.dim() == 3:
            return self._attend(query, enc)
        rows, size = query.shape
        group = rows // enc.states.size(0)
        context, weights = self._attend(query.view(-1, group, size), enc)  # [B, K, H], [B, K, S]
        return AttentionOutput(
            context.reshape(rows, -1), None if weights is None else weights.reshape(rows, -1)
        )

    def project_keys(self, states: Tensor) -> Tensor | None:
        """Query-independent key projection of encoder states [B, S, H], or None."""
        return None

    def step_loop(self, enc: EncoderOutput) -> StepAttention | None:
        """A `StepAttention` for a teacher-forced step loop (training), or None when this
        attention has no such fast form (it is then called step by step as usual)."""
        return None

    def _keys(self, enc: EncoderOutput) -> Tensor:
        """The projected keys: precomputed when available, else projected now."""
        if enc.keys is not None:
            return enc.keys
        keys = self.project_keys(enc.states)
        return enc.states if keys is None else keys

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        raise NotImplementedError


def attend_with_scores(scores: Tensor, enc: EncoderOutput) -> AttentionOutput:
    """scores [B, T, S] -> masked softmax in fp32 -> weights [B, T, S], context [B, T, H]."""
    mask = enc.mask[:, None, :]  # [B, 1, S]
    weights = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)
    context = weighted_sum(weights.to(enc.states.dtype), enc.states)  # [B, T, H]
    return AttentionOutput(context, weights)


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """query [B, T, H], keys [B, S, H] -> qᵀk scores [B, T, S]."""
    return torch.bmm(query, keys.transpose(1, 2))


def weighted_sum(weights: Tensor, values: Tensor) -> Tensor:
    """weights [B, T, S], values [B, S, H] -> Σ_j a_j v_j [B, T, H]."""
    return torch.bmm(weights, values)


class NoAttention(Attention):
    """No attention: the plain encoder-decoder (Cho et al. 2014; Sutskever et al. 2014).

        c_t = h_enc   for every t

    The context is a fixed summary of the source, the encoder's final top-layer hidden state
    (both directions concatenated), the same vector at every step; there are no weights.
    """

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        summary = enc.hidden[-1]  # [B, H]
        context = summary[:, None, :].expand(-1, query.size(1), -1)  # [B, T, H]
        return AttentionOutput(context, None)


class BahdanauAttention(Attention):
    """Additive attention (Bahdanau, Cho & Bengio 2015, "Neural machine translation by jointly
    learning to align and translate"):

        score(q, k_j) = vᵀ tanh(W_q q + W_k k_j)

    The query is the decoder's PREVIOUS state s_{t-1}; the context enters the recurrence (the
    decoder concatenates it to the RNN input). W_k k_j is projected once per sentence.
    """

    before_cell = True

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(hidden_size, hidden_size, bias=False)  # W_q
        self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False)  # W_k
        self.energy = nn.Linear(hidden_size, 1, bias=False)  # v

    def project_keys(self, states: Tensor) -> Tensor:
        return self.key_proj(states)

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        q = self.query_proj(query)[:, :, None, :]  # [B, T, 1, H]
        k = self._keys(enc)[:, None, :, :]  # [B, 1, S, H]
        scores = self.energy(torch.tanh(q + k)).squeeze(-1)  # [B, T, S]
        return attend_with_scores(scores, enc)


class LuongConcatAttention(BahdanauAttention):
    """Luong "concat" attention (Luong, Pham & Manning 2015, "Effective approaches to
    attention-based neural machine translation"):

        score(q, k_j) = vᵀ tanh(W [q; k_j]) = vᵀ tanh(W_q q + W_k k_j)   with W = [W_q  W_k]

    The same arithmetic as Bahdanau's, but the query is the CURRENT decoder state h_t and the
    context only enters the attentional vector. W_k k_j is projected once per sentence.
    """

    before_cell = False


class LuongDotAttention(Attention):
    """Luong "dot" attention (Luong, Pham & Manning 2015):

        score(q, k_j) = qᵀ k_j

    The query is the CURRENT decoder state h_t. No parameters.
    """

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        scores = dot_scores(query, enc.states)  # [B, T, S]
        return attend_with_scores(scores, enc)

    def step_loop(self, enc: EncoderOutput) -> StepAttention:
        return StepAttention(enc.states, enc.states, enc.mask)


class LuongGeneralAttention(Attention):
    """Luong "general" (bilinear) attention (Luong, Pham & Manning 2015):

        score(q, k_j) = qᵀ W k_j

    The query is the CURRENT decoder state h_t. W k_j is projected once per sentence.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False)  # W

    def project_keys(self, states: Tensor) -> Tensor:
        return self.key_proj(states)

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        scores = dot_scores(query, self._keys(enc))  # [B, T, S]
        return attend_with_scores(scores, enc)

    def step_loop(self, enc: EncoderOutput) -> StepAttention:
        return StepAttention(self._keys(enc), enc.states, enc.mask)


class MultiHeadAttention(Attention):
    """Multi-head attention (Vaswani et al. 2017, "Attention is all you need") over the encoder
    states, the query being the CURRENT decoder state:

        head_i = softmax((q W_i^Q)(K W_i^K)ᵀ / √d) (V W_i^V),   c = [head_1; ...; head_n] W^O

    The parameters are an `nn.MultiheadAttention`'s (d = H / heads). Its forward would project
    K and V again for every query, i.e. at every decoder step in the step loop and in search;
    here K W^K and V W^V are projected once per sentence (`project_keys`, [B, S, 2H]) and the
    heads are computed from them, with the fp32 masked softmax of the other attentions. Equal to
    `nn.MultiheadAttention.forward` (tests/models/test_models.py). The weights returned are averaged
    over heads.
    """

    def __init__(self, hidden_size: int, heads: int) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(
            embed_dim=hidden_size,
            num_heads=heads,
            kdim=hidden_size,
            vdim=hidden_size,
            batch_first=True,
        )
        self.heads = heads

    def project_keys(self, states: Tensor) -> Tensor:
        """[B, S, H] -> [K W^K; V W^V] [B, S, 2H] (keys and values are the encoder states)."""
        h = self.mha.embed_dim
        bias = self.mha.in_proj_bias
        return F.linear(states, self.mha.in_proj_weight[h:], None if bias is None else bias[h:])

    def _attend(self, query: Tensor, enc: EncoderOutput) -> AttentionOutput:
        h, heads = self.mha.embed_dim, self.heads
        bias = self.mha.in_proj_bias
        q = F.linear(query, self.mha.in_proj_weight[:h], None if bias is None else bias[:h])
        keys, values = self._keys(enc).split(h, dim=-1)  # [B, S, H] each
        batch, steps, length, d = query.size(0), query.size(1), keys.size(1), h // heads
        q = q.view(batch, steps, heads, d).transpose(1, 2)  # [B, n, T, d]
        k = keys.view(batch, length, heads, d).transpose(1, 2)  # [B, n, S, d]
        v = values.view(batch, length, heads, d).transpose(1, 2)  # [B, n, S, d]
        scores = torch.matmul(q, k.transpose(-1, -2)) * d**-0.5  # [B, n, T, S]
        mask = enc.mask[:, None, None, :]  # [B, 1, 1, S]
        weights = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)
        heads_out = torch.matmul(weights.to(v.dtype), v)  # [B, n, T, d]
        context = heads_out.transpose(1, 2).reshape(batch, steps, h)  # [B, T, H]
        return AttentionOutput(self.mha.out_proj(context), weights.mean(dim=1))  # [B, T, S]


class StepAttention:
    """Dot-product attention (a = softmax(K q), c = aᵀ V) for a teacher-forced step loop, with
    the gradients of K and V summed once for all steps instead of once per step.

        attend = attention.step_loop(enc)          # once, before the loop
        context, weights = attend(h_t)             # every step: [B, H] -> [B, H], [B, S]

    Autograd would, at every step's backward, write two [B, S, H] outer products (the step's
    share of dK and dV) and add them into the running sums: four passes over [B, S, H] per
    step, which dominate a CPU training update (memory-bound). Here each step's backward only
    computes the query's gradient and keeps its small factors (a_t, dc_t, ds_t, q_t); the
    backward of the node that hands K and V to the loop (run after every step's, since every
    step depends on it) sums them as two batched products, dV = Aᵀ dC and dK = dSᵀ Q. Values
    and gradients equal the plain step-by-step attention's (tests/models/test_models.py). Under
    autocast, K and V are cast once here, not at every step. One backward per forward.
    """

    def __init__(self, keys: Tensor, values: Tensor, mask: Tensor) -> None:
        device = keys.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            keys, values = keys.to(dtype), values.to(dtype)
        self.factors: list[tuple[Tensor, ...]] = []
        self.keys, self.values = _HandOver.apply(keys, values, self.factors)
        self.padding = ~mask  # [B, S], True at padding; inverted once, not at every step

    def __call__(self, query: Tensor) -> AttentionOutput:
        context, weights = _AttendStep.apply(
            query, self.keys, self.values, self.padding, self.factors
        )
        return AttentionOutput(context, weights)


class _HandOver(torch.autograd.Function):
    """Identity on (K, V) whose backward sums the steps' deferred K and V gradients."""

    @staticmethod
    def forward(ctx: Any, keys: Tensor, values: Tensor, factors: list) -> tuple[Tensor, Tensor]:
        ctx.factors = factors
        ctx.dtypes = (keys.dtype, values.dtype)
        return keys.view_as(keys), values.view_as(values)

    @staticmethod
    def backward(
        ctx: Any, grad_keys: Tensor | None, grad_values: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        factors: list[tuple[Tensor, ...]] = ctx.factors
        if not factors:
            return grad_keys, grad_values, None
        key_dtype, value_dtype = ctx.dtypes
        weights, grad_context, grad_scores, queries = (
            torch.stack(f, dim=1) for f in zip(*factors, strict=True)
        )
        factors.clear()
        with torch.autocast(weights.device.type, enabled=False):
            d_values = torch.bmm(
                weights.transpose(1, 2).to(value_dtype), grad_context.to(value_dtype)
            )
            d_keys = torch.bmm(grad_scores.transpose(1, 2).to(key_dtype), queries.to(key_dtype))
        if grad_keys is not None:
            d_keys = d_keys + grad_keys
        if grad_values is not None:
            d_values = d_values + grad_values
        return d_keys, d_values, None


class _AttendStep(torch.autograd.Function):
    """One step of `StepAttention`: query [B, H] -> context [B, H], weights [B, S] (fp32)."""

    @staticmethod
    def forward(
        ctx: Any, query: Tensor, keys: Tensor, values: Tensor, padding: Tensor, factors: list
    ) -> tuple[Tensor, Tensor]:
        with torch.autocast(query.device.type, enabled=False):
            q = query.to(keys.dtype)
            scores = torch.bmm(keys, q.unsqueeze(-1)).squeeze(-1).float()  # [B, S]
            weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=-1)
            context = torch.bmm(weights.to(values.dtype).unsqueeze(1), values).squeeze(1)
        ctx.save_for_backward(q, keys, values, weights)
        ctx.factors = factors
        ctx.query_dtype = query.dtype
        ctx.mark_non_differentiable(weights)
        return context, weights

    @staticmethod
    def backward(
        ctx: Any, grad_context: Tensor, _weights: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        q, keys, values, weights = ctx.saved_tensors
        with torch.autocast(q.device.type, enabled=False):
            grad_context = grad_context.to(values.dtype)
            grad_weights = torch.bmm(values, grad_context.unsqueeze(-1)).squeeze(-1).float()
            grad_scores = weights * (grad_weights - (weights * grad_weights).sum(-1, keepdim=True))
            grad_query = torch.bmm(grad_scores.to(keys.dtype).unsqueeze(1), keys).squeeze(1)
        ctx.factors.append((weights, grad_context, grad_scores, q))
        return grad_query.to(ctx.query_dtype), None, None, None, None


def make_attention(kind: AttentionKind, hidden_size: int, *, heads: int = 1) -> Attention:
    """The attention module for a recipe's `model.attention`."""
    if kind == "none":
        return NoAttention()
    if kind == "bahdanau":
        return BahdanauAttention(hidden_size)
    if kind == "luong_dot":
        return LuongDotAttention()
    if kind == "luong_general":
        return LuongGeneralAttention(hidden_size)
    if kind == "luong_concat":
        return LuongConcatAttention(hidden_size)
    if kind == "multihead":
        return MultiHeadAttention(hidden_size, heads)
    raise ValueError(f"unknown attention {kind!r}")


def _check_query(query: Tensor, enc: EncoderOutput) -> None:
    """query must be [B, H] or [B, T, H] with the encoder's B and H, or [B*K, H] (K queries
    per sentence)."""
    batch, _, hidden = enc.states.shape
    grouped = query.dim() == 2 and query.size(0) % batch == 0 and query.size(0) > 0
    if (
        query.dim() not in (2, 3)
        or query.size(-1) != hidden
        or (query.size(0) != batch and not grouped)
    ):
        raise ValueError(
            f"attention query must be [B, H], [B*K, H] or [B, T, H] with B={batch}, "
            f"H={hidden}; got {tuple(query.shape)}"
        )
