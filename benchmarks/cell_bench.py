"""Is the LSTM cell's element-wise work bound by dispatch or by memory? Three versions timed.

    python benchmarks/cell_bench.py [--compile] [--shape 2 175 128] [--dtype bf16]

The part of an LSTM step after the matrix products (gates [..., 4H] and c [..., H] -> h, c'),
forward and backward, at the shape of the encoder's two directions side by side (demo batch):
- eager: the PyTorch ops nmtkit runs (chunk, sigmoid, tanh, mul, add), autograd node by node;
- one node: a hand-written autograd.Function with the same arithmetic and its own backward
  (no per-op autograd nodes, no `chunk`-backward concatenation);
- compiled (`--compile`): torch.compile (inductor), which fuses the element-wise ops into one
  loop each way (needs a C++ compiler; compiling takes tens of seconds on 2 cores).
`--dtype bf16` times them on bf16 tensors (what `train.precision: bf16` runs on a CPU): the
compiled version stands for a hand-written fused C++ kernel (one loop each way, in fp32
registers), so if it does not beat eager, a custom op would not pay either.
If the three take about the same time, the work is bound by memory traffic, not by dispatch
or autograd overhead, and fusing it in Python or with the compiler does not pay.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def eager(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    i, f, g, o = gates.chunk(4, -1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


class OneNode(torch.autograd.Function):
    """The same cell as one autograd node with a hand-written backward."""

    @staticmethod
    def forward(ctx: Any, gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i, f, g, o = gates.chunk(4, -1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_next = torch.addcmul(f * c, i, g)
        tanh_c = torch.tanh(c_next)
        ctx.save_for_backward(i, f, g, o, c, tanh_c)
        return o * tanh_c, c_next

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor, grad_c: Tensor) -> tuple[Tensor, Tensor]:
        i, f, g, o, c, tanh_c = ctx.saved_tensors
        total = torch.addcmul(grad_c, grad_h * o, 1 - tanh_c * tanh_c)
        out = i.new_empty(*i.shape[:-1], 4 * i.size(-1))
        d_i, d_f, d_g, d_o = out.chunk(4, -1)
        torch.mul(total * g, i * (1 - i), out=d_i)
        torch.mul(total * c, f * (1 - f), out=d_f)
        torch.mul(total * i, 1 - g * g, out=d_g)
        torch.mul(grad_h * tanh_c, o * (1 - o), out=d_o)
        return out, total * f


def one_node(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    return OneNode.apply(gates, c)  # type: ignore[no-any-return]


def time_cell(
    fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    shape: list[int],
    n: int,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Microseconds per forward + backward."""
    *lead, hidden = shape
    gates = torch.randn(*lead, 4 * hidden, dtype=dtype, requires_grad=True)
    c = torch.randn(*lead, hidden, dtype=dtype, requires_grad=True)

    def run() -> None:
        h, c_next = fn(gates, c)
        torch.autograd.backward([h, c_next], [torch.ones_like(h), torch.ones_like(c_next)])

    for _ in range(5):
        run()
    started = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 175, 128])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    versions: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = {
        "eager": eager,
        "one node": one_node,
    }
    if args.compile:
        versions["compiled"] = torch.compile(eager, dynamic=True)
    for name, fn in versions.items():
        micros = time_cell(fn, args.shape, args.repeats, dtype)
        print(f"{name:9s} {micros:8.0f} µs per forward + backward, {args.dtype} {args.shape}")


if __name__ == "__main__":
    main()
