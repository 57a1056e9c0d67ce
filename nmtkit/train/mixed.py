"""How a training update uses its precision: which module computes, under which context, and
how its gradients reach the weights the optimizer updates.

    weights = StepWeights.build(model, device, "bf16")
    with weights.context():
        loss = loss_of(weights.compute(...))      # forward in the compute module
    loss.backward()
    weights.grads_to_master()                     # before clipping and the optimizer step
    optimizer.step()
    weights.pull()                                # after it

- fp32, and bf16 / fp16 on a GPU: the model computes itself (`compute is model`), under
  autocast for bf16 / fp16 (cuDNN's fused kernels keep their fp32 element-wise work there);
  `grads_to_master` and `pull` do nothing.
- bf16 on a CPU: a bf16 copy of the model computes, forward and backward, with no autocast;
  the model itself stays fp32 and is the master copy: the optimizer, gradient clipping (the
  norm in fp32), checkpoints and validation see only it. After the backward pass the copy's
  gradients move to the master as fp32; after the optimizer step the copy takes the master's
  new weights. On a CPU autocast casts every weight and activation in and out of bf16 at
  every operator of the step loops, and the element-wise work stays fp32 and reads twice the
  bytes: on the peers model's fresh batches autocast ran 0.92-0.97x fp32 and the copy
  1.05-1.13x, on the Multi30k recipe the copy 1.5x (docs/benchmarks.md, "bf16 training"). The
  loss's log-sum-exp and the attention's softmax run in fp32 inside the bf16 model
  (`train.loss`, `models.attention`).

The copy is made from the master and refreshed from it after every update, so a resumed run
(whose master comes from the checkpoint) continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any

import torch

from nmtkit.device import autocast_for
from nmtkit.models import Seq2Seq

ONEDNN_CACHE = 8192  # oneDNN kernels kept for bf16 training on a CPU (see StepWeights.build)


class StepWeights:
    """The compute module of a training update and its way back to the master weights (see
    the module docstring)."""

    def __init__(self, model: Seq2Seq, compute: Seq2Seq, autocast: Any) -> None:
        # `model` is the master (optimizer, clipping, checkpoints, validation)
        self.compute = compute  # what forward and backward run on (DDP wraps this)
        self._autocast = autocast
        pairs = zip(model.parameters(), compute.parameters(), strict=True)
        self._pairs = [] if compute is model else list(pairs)

    @classmethod
    def build(cls, model: Seq2Seq, device: torch.device, precision: str) -> StepWeights:
        """The model computing itself (under autocast for bf16 / fp16), or on a CPU in bf16, a
        bf16 copy of it."""
        if precision == "bf16" and device.type == "cpu":
            # Every new matrix shape costs oneDNN ~1.5 ms of code generation, and training's
            # shapes (batch rows, rows still running per encoder step) outnumber its default
            # cache of 1,024 kernels, which then thrashes: read before the first bf16 product.
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE))
            compute = copy.deepcopy(model).to(torch.bfloat16)
            return cls(model, compute, contextlib.nullcontext())
        return cls(model, model, autocast_for(device, precision))

    @property
    def is_copy(self) -> bool:
        return bool(self._pairs)

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """The context of the forward pass (autocast, or nothing)."""
        return self._autocast

    def grads_to_master(self) -> None:
        """Move the copy's gradients to the master's `.grad`, as fp32 (the copy's are cleared)."""
        for master, work in self._pairs:
            master.grad = None if work.grad is None else work.grad.float()
            work.grad = None

    def discard_grads(self) -> None:
        """Drop the copy's gradients of an update that is skipped (the optimizer drops the
        master's)."""
        for _, work in self._pairs:
            work.grad = None

    @torch.no_grad()
    def pull(self) -> None:
        """The copy takes the master's weights (after an optimizer step, or after loading them)."""
        for master, work in self._pairs:
            work.copy_(master)
