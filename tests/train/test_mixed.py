"""Training precision: `train.precision: auto`'s rule, and bf16 on a CPU as a bf16 copy of the
model with an fp32 master (`train.mixed.StepWeights`): its gradients agree with fp32's, the
master stays fp32 and the copy follows it, and forward = step loop within bf16's rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmtkit import device as device_mod
from nmtkit.data.tokenizer import PAD_ID
from nmtkit.device import training_precision
from nmtkit.models.dropout import dropout
from nmtkit.train.loss import projected_loss
from nmtkit.train.mixed import StepWeights
from tests.models.test_models import random_batch, step_loop, tiny_model

CPU = torch.device("cpu")


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_on_a_cpu_only_with_amx(
    monkeypatch: pytest.MonkeyPatch, amx: bool, expected: str
) -> None:
    monkeypatch.setattr(device_mod, "cpu_has_amx", lambda: amx)
    assert training_precision("auto", CPU) == expected
    for explicit in ("fp32", "bf16", "fp16"):  # an explicit choice is kept
        assert training_precision(explicit, CPU) == explicit


@pytest.mark.parametrize(("supported", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_a_gpu_follows_its_bf16_support(
    monkeypatch: pytest.MonkeyPatch, supported: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    assert training_precision("auto", torch.device("cuda")) == expected
    assert training_precision("auto", torch.device("mps")) == "fp32"


def _loss(model: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    src, src_lens = random_batch([7, 3, 5, 6], seed=seed)
    tgt, _ = random_batch([6, 4, 2, 5], seed=seed + 1)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    real = tgt_out != PAD_ID
    hidden = model(src, src_lens, tgt_in, positions=real, project=False)
    return projected_loss(hidden, model.decoder.output, tgt_out[real], 0.1).loss


def test_bf16_copy_gradients_reach_an_fp32_master_and_agree_with_fp32() -> None:
    options = {"attention": "luong_general", "input_feeding": "concat", "decoder_layers": 2}
    reference = tiny_model(seed=4, **options)
    _loss(reference).backward()
    model = tiny_model(seed=4, **options)
    weights = StepWeights.build(model, CPU, "bf16")
    assert weights.is_copy and weights.compute is not model
    assert all(p.dtype == torch.bfloat16 for p in weights.compute.parameters())
    _loss(weights.compute).backward()
    weights.grads_to_master()
    assert all(p.grad is None for p in weights.compute.parameters())
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
        assert q.grad is not None
        if q.grad.norm() > 1e-6:  # bf16 keeps 8 bits: the direction, not the last digits
            cosine = F.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)
            assert cosine > 0.99, name
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    weights.pull()
    for p, q, old in zip(model.parameters(), weights.compute.parameters(), before, strict=True):
        assert p.dtype == torch.float32 and not torch.equal(p, old)  # the master moved, in fp32
        assert torch.equal(q, p.detach().to(torch.bfloat16))  # and the copy follows it


def test_fp32_computes_on_the_model_itself() -> None:
    model = tiny_model()
    weights = StepWeights.build(model, CPU, "fp32")
    assert weights.compute is model and not weights.is_copy


@pytest.mark.parametrize(
    ("attention", "feeding"),
    [("luong_general", "concat"), ("bahdanau", "none"), ("luong_dot", "gated")],
)
def test_bf16_forward_equals_step_loop_within_rounding(attention: str, feeding: str) -> None:
    model = tiny_model(attention=attention, input_feeding=feeding, decoder_layers=2).eval()
    model = model.to(torch.bfloat16)
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        expected = step_loop(model, enc, tgt_in)
        log_probs = model.decoder(tgt_in, enc).float().log_softmax(-1)
    # the same operations in another order: equal but for bf16's rounding (2^-8 relative)
    torch.testing.assert_close(log_probs, expected, atol=0.05, rtol=0.02)


def test_dropout_on_bf16_keeps_exactly_one_minus_p() -> None:
    torch.manual_seed(0)
    y = dropout(torch.ones(200_000, dtype=torch.bfloat16), 0.3, True)
    assert y.dtype == torch.bfloat16
    assert abs((y != 0).float().mean().item() - 0.7) < 0.005
    torch.manual_seed(0)
    assert torch.equal(y != 0, dropout(torch.ones(200_000), 0.3, True) != 0)
