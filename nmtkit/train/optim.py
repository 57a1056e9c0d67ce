"""Optimizers and learning-rate schedules named in the recipe's `train` section.

The learning rate of update `step` (1-based) is `lr * factor(step) * plateau_scale`:

    constant      factor 1 (after an optional linear warm-up over `warmup_steps`)
    inverse_sqrt  linear warm-up to lr over `warmup_steps`, then sqrt(warmup / step)
                  (Vaswani et al. 2017)
    plateau       factor as constant; the scale halves whenever the validation metric has not
                  improved for PLATEAU_PATIENCE validations in a row

All of it is a function of the step and a few counters, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from nmtkit.recipe import TrainConfig

HIGHER_IS_BETTER = {"bleu": True, "chrf": True, "loss": False, "ppl": False}
PLATEAU_PATIENCE = 2
PLATEAU_FACTOR = 0.5


def improves(value: float, best: float | None, higher_is_better: bool) -> bool:
    return best is None or (value > best if higher_is_better else value < best)


def build_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)


class Schedule:
    """Sets the optimizer's learning rate before every update."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> None:
        self.optimizer, self.kind, self.warmup = optimizer, cfg.schedule, cfg.warmup_steps
        self.base_lr, self.higher_is_better = cfg.lr, HIGHER_IS_BETTER[cfg.early_stopping.metric]
        self.scale, self.bad_validations = 1.0, 0
        self.best: float | None = None

    def factor(self, step: int) -> float:
        step = max(step, 1)
        if self.warmup and step < self.warmup:
            return step / self.warmup
        if self.kind == "inverse_sqrt" and self.warmup:
            return math.sqrt(self.warmup / step)
        return 1.0

    def apply(self, step: int) -> float:
        """Set and return the learning rate of update `step`."""
        lr = self.base_lr * self.factor(step) * self.scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def observe(self, metric: float) -> None:
        """Feed a validation result (only the plateau schedule reacts)."""
        if self.kind != "plateau":
            return
        if improves(metric, self.best, self.higher_is_better):
            self.best, self.bad_validations = metric, 0
            return
        self.bad_validations += 1
        if self.bad_validations >= PLATEAU_PATIENCE:
            self.scale *= PLATEAU_FACTOR
            self.bad_validations = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = state["best"]
        self.bad_validations = int(state["bad_validations"])
