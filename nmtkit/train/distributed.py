"""Training on several processes: `torchrun` detection, the process group, DDP and the launcher.

One global batch stream for every world size: every rank runs the same seeded BatchSampler
over the same shards and takes every `size`-th example of each global batch, so the sampler
position in a checkpoint is global. Losses are divided by the global batch's target tokens and
multiplied by `size`; DDP averages gradients, so the update equals one process's. Only rank 0
logs, validates and writes; whatever changes the course of training (validation value, stop
decision, a signal on any rank) is shared by a collective, so all ranks take the same branch.
A world of one (no torchrun) has no process group and every collective is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import sys
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nmtkit.errors import UserError

if TYPE_CHECKING:
    from nmtkit.recipe import Recipe

TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# How long a rank waits in a collective for the others, e.g. while rank 0 validates and saves.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)
# How long the launcher gives the ranks to save last.pt after SIGINT/SIGTERM (torchrun's is 30
# s, or TORCH_ELASTIC_SHUTDOWN_TIMEOUT) before it kills them.
SHUTDOWN_TIMEOUT = 300


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process."""
    return all(name in os.environ for name in TORCHRUN_VARS)


class World:
    """This process's place among the training processes (rank, size) and their collectives."""

    def __init__(
        self, rank: int = 0, local_rank: int = 0, size: int = 1, device: torch.device | None = None
    ) -> None:
        self.rank, self.local_rank, self.size = rank, local_rank, size
        self.device = device or torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> World:
        """The world torchrun describes in the environment, or a world of one; the device is
        the rank's own GPU (`cuda:LOCAL_RANK`) on CUDA."""
        if not launched_by_torchrun():
            return cls(device=device)
        env = {name: os.environ[name] for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
        try:
            rank, local_rank, size = (int(value) for value in env.values())
        except ValueError:
            raise UserError(f"the torchrun environment is not valid: {env}") from None
        return cls(rank, local_rank, size, _rank_device(device, local_rank))

    def __enter__(self) -> World:
        if self.size == 1 or torch.distributed.is_initialized():
            return self
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(
            backend,
            rank=self.rank,
            world_size=self.size,
            timeout=COLLECTIVE_TIMEOUT,
            device_id=self.device if self.device.type == "cuda" else None,
        )
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self.size > 1 and torch.distributed.is_initialized():
            if kind is None:  # after an error the others may never arrive: leave at once
                with contextlib.suppress(RuntimeError):
                    torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def seed(self, seed: int, *more: int) -> None:
        """Give ranks other than 0 their own random streams (dropout), a function of the seed,
        the rank and `more`; rank 0's is left alone, so one process trains exactly as before."""
        if self.rank:
            entropy = np.random.SeedSequence([seed, self.rank, *more])
            torch.manual_seed(int(entropy.generate_state(1)[0]))

    def wrap(self, model: nn.Module) -> nn.Module:
        """`model` wrapped in DistributedDataParallel (which makes every rank start from rank
        0's parameters), or `model` itself in a world of one."""
        if self.size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def share(self, indices: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's examples of a global batch and the weight of its loss. Every `size`-th
        example, so that ranks get similar lengths; a rank left without examples (a batch
        smaller than the world) computes the first one with weight 0, as DDP needs every rank
        to run the backward pass."""
        part = indices[self.rank :: self.size]
        return (part, 1.0) if len(part) else (indices[:1], 0.0)

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over all ranks (in place)."""
        if self.size > 1:
            torch.distributed.all_reduce(values)
        return values

    def agree(self, stop: bool, signum: int | None) -> tuple[bool, int | None]:
        """Whether to stop (rank 0 decides) and the signal any rank received."""
        if self.size == 1:
            return stop, signum
        flags = torch.tensor([int(stop and self.is_main), signum or 0], device=self.device)
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        return bool(flags[0]), int(flags[1]) or None

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object) on every rank."""
        if self.size == 1:
            return value
        box = [value]
        device = self.device if self.device.type == "cuda" else None
        torch.distributed.broadcast_object_list(box, src=0, device=device)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, value)
        return out

    def check_same(self, value: Any, what: str) -> None:
        """Refuse to train if this rank's `value` differs from rank 0's (say how in `what`)."""
        if self.size > 1 and self.broadcast(value) != value:
            raise UserError(f"rank {self.rank} {what}")


def _rank_device(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) are "
                "visible; start at most one process per GPU (--nproc-per-node)"
            )
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if device.type != "cpu":
        raise UserError(
            f"training on several processes needs CUDA GPUs or the CPU, not {device.type}; "
            "set train.device to cuda or cpu"
        )
    return device


def launch(nproc: int, train_args: list[str], recipe: Recipe) -> int:
    """Run `nmtkit train TRAIN_ARGS` (for `recipe`) on `nproc` local processes under torch's
    elastic agent, as `torchrun --standalone --nproc-per-node N` does, and return the exit
    code: the first failed rank's (2 for a user error), 128 + signal when stopped by one."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from nmtkit.data.manifest import PreparedData
    from nmtkit.device import pick_device

    if launched_by_torchrun():
        raise UserError("--nproc starts torchrun itself; do not use it under torchrun")
    # What every rank would check first is checked once, here, with one message.
    PreparedData.for_recipe(recipe)
    device = pick_device(recipe.train.device, setting="train.device")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise UserError(
            f"--nproc {nproc} but only {torch.cuda.device_count()} GPU(s) are visible; "
            "start at most one process per GPU"
        )
    _rank_device(device, 0)  # the device kinds DDP supports
    # Each rank gets its share of the cores (torchrun's default is one thread per rank).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    for name in list(logging.root.manager.loggerDict):  # we report failures ourselves
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "nmtkit", "train", *train_args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code, how = failure.exitcode, f"exited with code {failure.exitcode}"
        if code < 0:  # killed by a signal
            how = f"was killed by {signal.Signals(-code).name}"
        if code != UserError.exit_code:  # a user error has said its piece
            print(f"error: training rank {rank} {how}; the others were stopped", file=sys.stderr)
        return code if code > 0 else 1
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


def no_sync(model: nn.Module) -> contextlib.AbstractContextManager[Any]:
    """DDP's `no_sync` (gradients accumulate locally, no all-reduce) or nothing."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()
