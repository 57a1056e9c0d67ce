"""Where and in what precision to compute: shared by training and translation."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, cast, get_args

import torch

from nmtkit.errors import UserError
from nmtkit.recipe import Precision

PRECISIONS: tuple[str, ...] = ("auto", *get_args(Precision))  # what --precision accepts


def pick_device(name: str, *, setting: str = "--device") -> torch.device:
    """`auto`: CUDA, then MPS, then CPU; an explicit device must exist (`setting` names the
    option or recipe key in the error)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{setting} is cuda but no CUDA GPU is visible; use auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{setting} is mps but MPS is not available; use auto or cpu")
    return torch.device(name)


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bf16 matrices in AMX tiles (Intel Sapphire Rapids and
    later; Linux's `amx_bf16` flag in /proc/cpuinfo). Without AMX, bf16 on a CPU is emulated
    or narrow and does not pay."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return "amx_bf16" in flags


def training_precision(name: str, device: torch.device) -> Precision:
    """The precision to train in. `auto`: bf16 on a CPU with AMX (`cpu_has_amx`) and on a
    CUDA GPU that supports it, fp32 elsewhere (MPS, CPUs without AMX, older GPUs). Measured
    (docs/benchmarks.md, "bf16 training", "GPU"): on an AMX CPU the Multi30k recipe trains
    1.5x faster in bf16 with the same valid BLEU per update (so a better model in the same
    time), the small peers model 1.05-1.13x; on an H200 the Marian size 1.1-1.6x. An explicit
    fp32 / bf16 / fp16 is kept as it is."""
    if name != "auto":
        return cast(Precision, name)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_amx() else "fp32"


def inference_precision(name: str, device: torch.device, trained: str) -> Precision:
    """The precision to translate in. `auto`: the training precision (`trained`) on a GPU,
    fp32 elsewhere. bf16 on a CPU with AMX decodes 1.3-1.6x faster at BLEU within 0.2, but
    its memory grows with the input (oneDNN's per-shape state; docs/benchmarks.md, "Translating
    a large file"), so it is not the default there. Anything but PRECISIONS is a UserError."""
    if name not in PRECISIONS:
        raise UserError(
            f"--precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {name!r}"
        )
    if name == "auto":
        return training_precision(trained, device) if device.type == "cuda" else "fp32"
    return cast(Precision, name)


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast (softmax and losses stay fp32), or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UserError("train.precision fp16 needs a CUDA GPU; use bf16 or fp32 here")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
