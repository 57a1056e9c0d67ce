"""Where a training update's time goes: torch.profiler over nmtkit's own update.

    python benchmarks/profile_train.py --model peers --updates 10 [--precision bf16] [--shapes]

Builds a model of `train_bench.SIZES` and runs `train.loop._update` (forward, fused loss,
backward, clipping, Adam) on 4,096-token batches with the lengths of the demo corpus
(`runs/demo/data`) and random ids, first a few warm-up updates, then `--updates` under
torch.profiler. Prints the operators by self CPU time (with `--shapes`, also grouped by input
shape) and the share of the update spent in matrix products, so a change can be judged
against where the time actually goes. The profiler adds its own overhead to small
operators; time a change with `train_bench.py`, not with this.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from train_bench import SIZES, random_batches, update_run  # noqa: E402

from nmtkit.train.loop import _update  # noqa: E402

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="peers", choices=list(SIZES))
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "demo" / "data")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--shapes", action="store_true", help="also group by input shapes")
    args = parser.parse_args()

    run = update_run(args.model, torch.device("cpu"), args.precision)
    stream = random_batches(args.data, SIZES[args.model][2])
    batches = [next(stream) for _ in range(args.warmup + args.updates)]
    for batch in batches[: args.warmup]:
        _update(run, [(batch, 1.0)], int((batch.tgt_out != 0).sum()))  # type: ignore[arg-type]
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for batch in batches[args.warmup :]:
            _update(run, [(batch, 1.0)], int((batch.tgt_out != 0).sum()))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if args.shapes:
        table = prof.key_averages(group_by_input_shape=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    print(
        f"{args.model} {args.precision}: {1000 * seconds / args.updates:.0f} ms per update under "
        f"the profiler; matrix products {100 * matmul / total:.0f}% of self CPU time"
    )


if __name__ == "__main__":
    main()
