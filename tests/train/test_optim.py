"""Learning-rate schedules: warm-up, inverse square root, plateau halving, and their state."""

from __future__ import annotations

import math

import pytest
import torch

from nmtkit.recipe import TrainConfig
from nmtkit.train.optim import Schedule, build_optimizer


def schedule(**cfg: object) -> Schedule:
    config = TrainConfig.model_validate(cfg)
    param = torch.nn.Parameter(torch.zeros(1))
    return Schedule(build_optimizer([param], config), config)


def test_constant_with_warmup() -> None:
    s = schedule(lr=0.01, warmup_steps=4)
    assert [round(s.apply(i), 6) for i in (1, 2, 4, 100)] == [0.0025, 0.005, 0.01, 0.01]
    assert s.optimizer.param_groups[0]["lr"] == 0.01


def test_inverse_sqrt() -> None:
    s = schedule(lr=1.0, warmup_steps=100, schedule="inverse_sqrt")
    assert s.apply(50) == pytest.approx(0.5)
    assert s.apply(100) == pytest.approx(1.0)
    assert s.apply(400) == pytest.approx(math.sqrt(100 / 400))


def test_plateau_halves_after_two_bad_validations_and_round_trips() -> None:
    s = schedule(lr=1.0, schedule="plateau")
    for bleu in (10.0, 12.0, 11.0, 11.5):
        s.observe(bleu)
    assert s.apply(10) == 0.5
    again = schedule(lr=1.0, schedule="plateau")
    again.load_state_dict(s.state_dict())
    assert again.apply(10) == 0.5
    loss = schedule(lr=1.0, schedule="plateau", early_stopping={"metric": "loss"})
    for value in (3.0, 2.0, 2.5, 2.6):
        loss.observe(value)
    assert loss.apply(1) == 0.5


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers(name: str) -> None:
    param = torch.nn.Parameter(torch.ones(2))
    opt = build_optimizer([param], TrainConfig(optimizer=name, lr=0.1))
    param.sum().backward()
    opt.step()
    assert (param < 1).all()
