"""Label-smoothed cross entropy agrees with torch's definition and ignores padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nmtkit.data.tokenizer import PAD_ID
from nmtkit.train.loss import sequence_loss


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
