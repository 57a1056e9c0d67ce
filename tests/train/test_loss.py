"""Label-smoothed cross entropy agrees with torch's definition and ignores padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmtkit.data.tokenizer import PAD_ID
from nmtkit.models.decoder import OutputLayer
from nmtkit.train.loss import projected_loss, sequence_loss, token_loss


def test_matches_torch_cross_entropy_over_real_tokens() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    target = torch.randint(4, 11, (3, 5))
    target[0, 3:] = PAD_ID
    target[2, 1:] = PAD_ID
    for smoothing in (0.0, 0.1, 0.3):
        sums = sequence_loss(logits, target, smoothing)
        expected = F.cross_entropy(
            logits.view(-1, 11),
            target.view(-1),
            ignore_index=PAD_ID,
            label_smoothing=smoothing,
            reduction="sum",
        )
        assert torch.allclose(sums.loss, expected, atol=1e-5)
        nll = F.cross_entropy(
            logits.view(-1, 11), target.view(-1), ignore_index=PAD_ID, reduction="sum"
        )
        assert torch.allclose(sums.nll, nll, atol=1e-5)
        assert int(sums.tokens) == int((target != PAD_ID).sum())


def test_padding_logits_do_not_matter() -> None:
    logits = torch.randn(1, 4, 7)
    target = torch.tensor([[5, 6, PAD_ID, PAD_ID]])
    changed = logits.clone()
    changed[0, 2:] = 1e4
    assert torch.equal(
        sequence_loss(logits, target, 0.1).loss, sequence_loss(changed, target, 0.1).loss
    )


def _output_layer(hidden: int, vocab: int, tied_size: int | None = None) -> OutputLayer:
    torch.manual_seed(4)
    layer = OutputLayer(hidden, vocab, tied_size=tied_size)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.5)
    return layer


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize(("chunk_rows", "tied_size"), [(3, None), (1000, None), (4, 6)])
def test_projected_loss_equals_the_unfused_loss_and_gradients(
    smoothing: float, chunk_rows: int, tied_size: int | None
) -> None:
    """The fused, chunked output layer + loss gives the same sums and the same gradients for
    the hidden vectors, the projection (and the tied layer's `pre`) and the bias."""
    layer = _output_layer(8, 13, tied_size)
    hidden = torch.randn(10, 8, requires_grad=True)
    target = torch.randint(4, 13, (10,))
    params = [hidden, *layer.parameters()]
    expected = token_loss(layer(hidden), target, smoothing)
    expected_grads = torch.autograd.grad(expected.loss * 0.7, params)
    got = projected_loss(hidden, layer, target, smoothing, chunk_rows=chunk_rows)
    got_grads = torch.autograd.grad(got.loss * 0.7, params)
    torch.testing.assert_close(got.loss, expected.loss)
    torch.testing.assert_close(got.nll, expected.nll)
    assert int(got.tokens) == 10
    for g, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_projected_loss_without_gradients_and_under_autocast() -> None:
    layer = _output_layer(8, 13)
    hidden = torch.randn(10, 8, requires_grad=True)
    target = torch.randint(4, 13, (10,))
    expected = token_loss(layer(hidden), target, 0.0)
    with torch.no_grad():
        plain = projected_loss(hidden, layer, target, 0.0, chunk_rows=3)
    assert not plain.loss.requires_grad
    torch.testing.assert_close(plain.loss, expected.loss)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = projected_loss(hidden, layer, target, 0.0)
    assert low.loss.dtype == torch.float32
    torch.testing.assert_close(low.loss, expected.loss, rtol=0.02, atol=0.5)
    (grad,) = torch.autograd.grad(low.loss, [hidden])
    assert grad.dtype == torch.float32 and torch.isfinite(grad).all()
