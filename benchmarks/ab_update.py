"""Before / after: the training update of this checkout against an earlier commit, same batches.

    python benchmarks/ab_update.py --before 157901d --model peers --rounds 2 [--precision bf16]

Checks the `--before` revision out into a temporary git worktree, then runs the same
measurement in a fresh process per checkout, alternating (before, after, before, after, ...)
so that a drift in the machine's speed hits both: `train.loop._update` (forward, loss,
backward, clipping, Adam) of a `train_bench.SIZES` model on `--steps` 4,096-token batches
with the demo corpus's lengths (`runs/demo/data`) and random ids, after `--warmup` updates.
Prints target tokens/s per run. The child process imports only the checkout under test, and
only interfaces both share (build_model, load_recipe, BatchSampler, Batch,
`_update(run, [(batch, weight)], tokens)`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from worktree import revision_checkout  # noqa: E402

CHILD = """
import sys, time
sys.path.insert(0, {code!r})
import numpy as np, torch
from pathlib import Path
from types import SimpleNamespace
from nmtkit.data.batching import Batch, BatchSampler, pad
try:  # where the prepared data's owner lives differs between revisions
    from nmtkit.data.manifest import PreparedData
except ImportError:
    from nmtkit.data.prepare import PreparedData
from nmtkit.device import autocast_for
from nmtkit.models import build_model
from nmtkit.recipe import ModelConfig, load_recipe
from nmtkit.train.distributed import World
from nmtkit.train.loop import _update
from nmtkit.train.optim import build_optimizer
overrides, vocab = {overrides!r}, {vocab}


def random_batch(indices):  # the lengths of these examples, random ids (as train_bench)
    src_lens = [len(src[int(i)]) for i in indices]
    tgt_ids = [rng.integers(4, vocab, len(tgt[int(i)]) + 1) for i in indices]
    return Batch(
        pad(list(rng.integers(4, vocab, n + 1)) for n in src_lens),
        torch.tensor([n + 1 for n in src_lens]),
        pad([1, *t[:-1]] for t in tgt_ids),
        pad(t for t in tgt_ids),
        torch.as_tensor(indices),
    )


recipe = load_recipe(Path({code!r}) / "recipes" / "demo.yaml", ["train.precision={precision}"])
torch.manual_seed(1)
model = build_model(ModelConfig(**{{**recipe.model.model_dump(), **overrides}}), vocab, vocab)
cpu = torch.device("cpu")
run = SimpleNamespace(recipe=recipe, world=World(), device=cpu, model=model, ddp=model,
    amp=autocast_for(cpu, {precision!r}), scaler=torch.amp.GradScaler("cpu", enabled=False),
    optimizer=build_optimizer(model.parameters(), recipe.train))
try:  # revisions with train.mixed (issue 20): bf16 on a CPU is a bf16 copy of the model
    from nmtkit.train.mixed import StepWeights
    run.weights = StepWeights.build(model, cpu, {precision!r})
    run.ddp = run.weights.compute
except ImportError:
    pass
src, tgt = PreparedData.open(Path({data!r})).shards("train")
batches = iter(BatchSampler(src.lengths, tgt.lengths, batch_tokens=4096, seed=1))
rng = np.random.default_rng(1)
batches = [random_batch(next(batches)) for _ in range({total})]
tokens = 0
for i, batch in enumerate(batches):
    if i == {warmup}:
        started = time.perf_counter()
    real = int((batch.tgt_out != 0).sum())
    _update(run, [(batch, 1.0)], real)
    if i >= {warmup}:
        tokens += real
print(round(tokens / (time.perf_counter() - started)))
"""


def measure(code: Path, args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_bench import SIZES  # this checkout's model sizes, for both

    _, overrides, vocab, _ = SIZES[args.model]
    script = CHILD.format(
        code=str(code),
        overrides=overrides,
        vocab=vocab,
        precision=args.precision,
        data=str(args.data),
        total=args.warmup + args.steps,
        warmup=args.warmup,
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=code
    )
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--model", default="peers")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "demo" / "data")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with revision_checkout(args.before) as before:
        results: dict[str, list[int]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for name, code in (("before", before), ("after", REPO)):
                results[name].append(measure(code, args))
                print(f"{name:6s} {args.model} {args.precision}: {results[name][-1]:,} tok/s")
        gain = sum(results["after"]) / sum(results["before"]) - 1
        print(f"after / before: {100 * gain:+.1f}%")


if __name__ == "__main__":
    main()
