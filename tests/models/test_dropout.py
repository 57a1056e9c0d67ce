"""nmtkit's Dropout: nn.Dropout's distribution and scaling, drawn with torch.rand."""

from __future__ import annotations

import pytest
import torch

from nmtkit.models.dropout import Dropout, dropout


def test_keeps_one_minus_p_and_scales_the_kept() -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.2, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1.25))
    # the expectation is preserved, as with nn.Dropout
    assert abs(y.mean().item() - 1.0) < 0.01


def test_eval_p0_and_p1() -> None:
    x = torch.randn(4, 5)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)


def test_gradient_is_the_same_mask() -> None:
    torch.manual_seed(1)
    x = torch.randn(50, 7, requires_grad=True)
    y = dropout(x, 0.3, True)
    (grad,) = torch.autograd.grad(y.sum(), [x])
    assert torch.equal(grad != 0, y.detach() != 0)
    assert torch.allclose(grad[grad != 0], torch.full_like(grad[grad != 0], 1 / 0.7))


def test_same_seed_same_mask_bf16_and_fp32_shapes() -> None:
    torch.manual_seed(3)
    a = dropout(torch.ones(3, 4, dtype=torch.bfloat16), 0.5, True)
    torch.manual_seed(3)
    b = dropout(torch.ones(3, 4), 0.5, True)
    assert a.dtype == torch.bfloat16
    assert torch.equal(a.float() != 0, b != 0)
