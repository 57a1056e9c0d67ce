"""Attention: weights are a distribution over the real source positions, a single query equals
a block of queries, and precomputed keys change nothing."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from nmtkit.models.attention import (
    BahdanauAttention,
    LuongConcatAttention,
    NoAttention,
    make_attention,
)
from nmtkit.models.encoder import EncoderOutput
from nmtkit.recipe import AttentionKind

WEIGHTED: list[AttentionKind] = [
    "bahdanau",
    "luong_dot",
    "luong_general",
    "luong_concat",
    "multihead",
]
HIDDEN = 8


def encoder_output(lens: list[int], seed: int = 0) -> EncoderOutput:
    """Random encoder states [B, S, H], zeros at padding, as the encoder produces them."""
    gen = torch.Generator().manual_seed(seed)
    batch, steps = len(lens), max(lens)
    lengths = torch.tensor(lens)
    mask = torch.arange(steps)[None, :] < lengths[:, None]
    states = torch.randn(batch, steps, HIDDEN, generator=gen) * mask[..., None]
    hidden = torch.randn(2, batch, HIDDEN, generator=gen)
    return EncoderOutput(states, mask, lengths, hidden, None)


def queries(batch: int, steps: int | None = None, seed: int = 1) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, HIDDEN) if steps is None else (batch, steps, HIDDEN)
    return torch.randn(*shape, generator=gen) * 3


@pytest.mark.parametrize("kind", WEIGHTED)
def test_weights_sum_to_one_and_vanish_on_padding(kind: AttentionKind) -> None:
    torch.manual_seed(0)
    attn = make_attention(kind, HIDDEN, heads=2).eval()
    enc = encoder_output([5, 2, 4])
    for query in (queries(3), queries(3, steps=4)):
        context, weights = attn(query, enc)
        assert weights is not None and context.shape == query.shape
        assert weights.shape == (*query.shape[:-1], 5)
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        pad = ~enc.mask if query.dim() == 2 else ~enc.mask[:, None, :].expand_as(weights)
        assert torch.all(weights[pad] == 0)
        assert torch.all(weights[~pad] > 0)


@pytest.mark.parametrize("kind", WEIGHTED)
def test_block_of_queries_equals_one_query_at_a_time(kind: AttentionKind) -> None:
    torch.manual_seed(0)
    attn = make_attention(kind, HIDDEN, heads=2).eval()
    enc = encoder_output([5, 2, 4])
    block = queries(3, steps=4)
    context, weights = attn(block, enc)
    assert weights is not None
    for t in range(4):
        one_context, one_weights = attn(block[:, t], enc)
        torch.testing.assert_close(context[:, t], one_context)
        torch.testing.assert_close(weights[:, t], one_weights)


@pytest.mark.parametrize("kind", WEIGHTED)
def test_precomputed_keys_give_the_same_result(kind: AttentionKind) -> None:
    torch.manual_seed(0)
    attn = make_attention(kind, HIDDEN, heads=2).eval()
    enc = encoder_output([5, 3])
    with_keys = enc._replace(keys=attn.project_keys(enc.states))
    has_projection = kind in ("bahdanau", "luong_general", "luong_concat", "multihead")
    assert (with_keys.keys is not None) == has_projection
    query = queries(2)
    torch.testing.assert_close(attn(query, with_keys), attn(query, enc))


def test_padding_content_does_not_matter() -> None:
    """Whatever sits at padded positions (here: large values), the result is the same."""
    torch.manual_seed(0)
    enc = encoder_output([5, 2])
    noisy = enc._replace(states=torch.where(enc.mask[..., None], enc.states, 100.0))
    for kind in WEIGHTED:
        attn = make_attention(kind, HIDDEN, heads=2).eval()
        context, weights = attn(queries(2), enc)
        noisy_context, noisy_weights = attn(queries(2), noisy)
        torch.testing.assert_close(context, noisy_context)
        torch.testing.assert_close(weights, noisy_weights)


def test_no_attention_is_the_fixed_final_state() -> None:
    enc = encoder_output([5, 2])
    attn = NoAttention()
    context, weights = attn(queries(2), enc)
    assert weights is None
    torch.testing.assert_close(context, enc.hidden[-1])
    block_context, _ = attn(queries(2, steps=3), enc)
    torch.testing.assert_close(block_context, enc.hidden[-1][:, None].expand(-1, 3, -1))


def test_bahdanau_queries_before_the_cell_and_luong_after() -> None:
    assert BahdanauAttention(HIDDEN).before_cell
    assert not LuongConcatAttention(HIDDEN).before_cell
    assert not make_attention("luong_dot", HIDDEN).before_cell


def test_luong_dot_matches_its_formula() -> None:
    enc = encoder_output([4, 3])
    query = queries(2)
    context, weights = make_attention("luong_dot", HIDDEN)(query, enc)
    scores = torch.einsum("bh,bsh->bs", query, enc.states).masked_fill(~enc.mask, -torch.inf)
    expected = scores.softmax(-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, torch.einsum("bs,bsh->bh", expected, enc.states))


def test_bad_query_shape_is_rejected() -> None:
    attn = make_attention("luong_dot", HIDDEN)
    with pytest.raises(ValueError, match="query"):
        attn(torch.zeros(2, HIDDEN + 1), encoder_output([3, 2]))
    with pytest.raises(ValueError, match="unknown attention"):
        make_attention("cosine", HIDDEN)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [*WEIGHTED, "none"])
def test_k_queries_per_sentence_equal_a_repeated_encoder_output(kind: AttentionKind) -> None:
    """Beam search's layout: K rows per sentence against one encoder row each give what the
    encoder output repeated K times (one row per query) gives."""
    torch.manual_seed(0)
    attention = make_attention(kind, HIDDEN, heads=2)
    enc = encoder_output([5, 2, 4])
    k = 3
    query = queries(3 * k)
    repeated = enc.select(torch.arange(3).repeat_interleave(k))
    context, weights = attention(query, enc)
    expected_context, expected_weights = attention(query, repeated)
    torch.testing.assert_close(context, expected_context)
    if expected_weights is None:
        assert weights is None
    else:
        torch.testing.assert_close(weights, expected_weights)
    with pytest.raises(ValueError, match=r"\[B\*K, H\]"):
        attention(queries(3 * k + 1), enc)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_multihead_equals_nn_multiheadattention(heads: int) -> None:
    """Keys and values projected once per sentence give what nn.MultiheadAttention's own
    forward (which projects them for every query) gives, padding masked."""
    from nmtkit.models.attention import MultiHeadAttention

    torch.manual_seed(heads)
    attention = MultiHeadAttention(8, heads)
    states = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    states = states * mask[..., None]
    enc = EncoderOutput(states, mask, mask.sum(1), torch.zeros(1, 3, 8), None)
    query = torch.randn(3, 4, 8)
    want, want_weights = attention.mha(query, states, states, key_padding_mask=~mask)
    for projected in (enc, enc._replace(keys=attention.project_keys(states))):
        got = attention(query, projected)
        torch.testing.assert_close(got.context, want, rtol=1e-5, atol=1e-6)
        assert got.weights is not None
        torch.testing.assert_close(got.weights, want_weights, rtol=1e-5, atol=1e-6)
