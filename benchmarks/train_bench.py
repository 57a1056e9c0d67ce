"""Training throughput and model FLOPs utilisation (MFU) at the classic model sizes.

    python benchmarks/train_bench.py --out docs/benchmarks.md

Measures, in one process: the machine's matrix-multiply peak (fp32 on the CPU, bf16 on a GPU:
the best of several timed square matmuls), then for each model size the steady training
throughput of nmtkit's own update (`train.loop._update`: forward, label-smoothed loss, backward,
clipping, Adam) on 4,096-token length-bucketed batches, after warm-up updates. Batches take
their lengths from the demo's prepared corpus (`runs/demo/data`, made by `make demo`) and random
token ids from each model's vocabulary, so every size sees the same batch shapes.

FLOPs per update come from `nmtkit.models.flops` (matrix products only, real tokens only,
backward = 2x forward); MFU = achieved FLOPs/s / peak. Results go to the `train-mfu` section of
the Markdown file and to `<out>.json`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

from nmtkit.data.batching import Batch, BatchSampler, pad  # noqa: E402
from nmtkit.data.manifest import PreparedData  # noqa: E402
from nmtkit.data.shards import Shard  # noqa: E402
from nmtkit.device import autocast_for  # noqa: E402
from nmtkit.models import build_model  # noqa: E402
from nmtkit.models.flops import FlopCounts  # noqa: E402
from nmtkit.recipe import ModelConfig, load_recipe  # noqa: E402
from nmtkit.train.distributed import World  # noqa: E402
from nmtkit.train.loop import _update  # noqa: E402
from nmtkit.train.mixed import StepWeights  # noqa: E402
from nmtkit.train.optim import build_optimizer  # noqa: E402

SECTION = "train-mfu"

# name: (what it stands for, model section, source/target vocabulary, GPU only)
SIZES: dict[str, tuple[str, dict[str, Any], int, bool]] = {
    "demo": ("recipes/demo.yaml", {}, 3000, False),
    "iwslt": (
        "JoeyNMT / Wiseman & Rush IWSLT: biLSTM 256 (2x128) encoder, LSTM 256 decoder, Luong "
        "general attention, input feeding, 8k vocabularies",
        {
            "embed_size": 256,
            "hidden_size": 256,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "bidirectional": True,
            "attention": "luong_general",
            "input_feeding": "concat",
            "init": "bridge",
            "tie_embeddings": True,
        },
        8000,
        False,
    ),
    "peers": (
        "the model of the comparison with OpenNMT-py: 2-layer biLSTM (2x128) encoder, "
        "2-layer LSTM 256 decoder, Luong general attention, input feeding, decoder initialised "
        "from the encoder's final states, dropout 0.2, untied embeddings, 1.4k vocabularies",
        {
            "embed_size": 256,
            "hidden_size": 256,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "bidirectional": True,
            "attention": "luong_general",
            "input_feeding": "concat",
            "init": "final",
            "dropout": 0.2,
            "tie_embeddings": False,
        },
        1400,
        False,
    ),
    "marian": (
        "Marian / Nematus: embeddings 512, hidden 1024, 32k vocabularies",
        {
            "embed_size": 512,
            "hidden_size": 1024,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "bidirectional": True,
            "attention": "bahdanau",
            "input_feeding": "none",
            "init": "mean",
            "tie_embeddings": True,
        },
        32000,
        True,
    ),
}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 1.0) -> float:
    """Best FLOPs/s of n x n matmuls over a few timed rounds."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            torch.mm(a, b)
            count += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * count / (time.perf_counter() - started))
    return best


def random_batch(src: Shard, tgt: Shard, indices: np.ndarray, vocab: int, rng: Any) -> Batch:
    """The shapes of these examples, with random ids from a vocabulary of `vocab`."""
    src_lens = [len(src[int(i)]) for i in indices]
    tgt_lens = [len(tgt[int(i)]) for i in indices]
    src_ids = pad(list(rng.integers(4, vocab, n + 1)) for n in src_lens)
    tgt_ids = [rng.integers(4, vocab, n + 1) for n in tgt_lens]
    tgt_in = pad([1, *t[:-1]] for t in tgt_ids)
    tgt_out = pad(t for t in tgt_ids)
    lens = torch.tensor([n + 1 for n in src_lens])
    return Batch(src_ids, lens, tgt_in, tgt_out, torch.as_tensor(indices))


def update_run(name: str, device: torch.device, precision: str) -> SimpleNamespace:
    """What `train.loop._update` needs, for a model of SIZES (demo recipe, seed 1)."""
    _, overrides, vocab, _ = SIZES[name]
    recipe = load_recipe(REPO / "recipes" / "demo.yaml", [f"train.precision={precision}"])
    model_cfg = ModelConfig(**{**recipe.model.model_dump(), **overrides})
    torch.manual_seed(1)
    model = build_model(model_cfg, vocab, vocab).to(device)
    return SimpleNamespace(
        recipe=recipe,
        world=World(),
        device=device,
        model=model,
        weights=(weights := StepWeights.build(model, device, precision)),
        ddp=weights.compute,
        amp=autocast_for(device, precision),
        scaler=torch.amp.GradScaler(device.type, enabled=False),
        optimizer=build_optimizer(model.parameters(), recipe.train),
    )


def random_batches(data: Path, vocab: int) -> Iterator[Batch]:
    """4,096-token batches with the lengths of `data`'s training split, random ids."""
    src, tgt = PreparedData.open(data).shards("train")
    sampler = BatchSampler(src.lengths, tgt.lengths, batch_tokens=4096, seed=1)
    rng = np.random.default_rng(1)
    for indices in sampler:
        yield random_batch(src, tgt, indices, vocab, rng)


def measure(
    name: str, data: Path, device: torch.device, precision: str, warmup: int, steps: int
) -> dict[str, Any]:
    vocab = SIZES[name][2]
    run = update_run(name, device, precision)
    model = run.model
    counts = FlopCounts.of(model)
    batches = random_batches(data, vocab)
    tokens = flops = 0
    for step in range(warmup + steps):
        batch = next(batches)
        real = int((batch.tgt_out != 0).sum())
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        _update(run, [(batch, 1.0)], real)  # type: ignore[arg-type]
        if step >= warmup:
            src_n = batch.src_lens.tolist()
            tgt_n = (batch.tgt_out != 0).sum(1).tolist()
            tokens += real
            flops += 3 * counts.forward(
                src_tokens=sum(src_n),
                tgt_tokens=sum(tgt_n),
                pairs=sum(s * t for s, t in zip(src_n, tgt_n, strict=True)),
                sentences=len(src_n),
            )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "vocab": vocab,
        "precision": precision,
        "steps": steps,
        "tok_per_s": round(tokens / seconds),
        "gflop_per_s": round(flops / seconds / 1e9, 2),
        "train_flops_per_tgt_token": round(flops / tokens),
    }


def render(peaks: dict[str, tuple[float, str]], rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {cpu_description()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; measured "
        f"{time.strftime('%Y-%m-%d')}.  ",
        *(
            f"Matmul peak, {precision} ({label}): **{peak / 1e9:,.1f} GFLOP/s**.  "
            for precision, (peak, label) in peaks.items()
        ),
        "nmtkit's training update (forward, loss, backward, clipping, Adam) on 4,096-token "
        "batches with the demo corpus's lengths and random ids; steady state after warm-up. "
        "FLOPs: matrix products on real tokens, backward = 2x forward (`nmtkit.models.flops`).",
        "",
        "| model | params | vocab | precision | tgt tok/s | train FLOPs / tgt token | GFLOP/s "
        "| MFU |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mfu = 100 * r["gflop_per_s"] * 1e9 / peaks[r["precision"]][0]
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['vocab']:,} | {r['precision']} "
            f"| {r['tok_per_s']:,} | {r['train_flops_per_tgt_token'] / 1e6:.1f} M "
            f"| {r['gflop_per_s']} | {mfu:.1f}% |"
        )
    lines += ["", "Models:"]
    lines += [f"- `{name}`: {SIZES[name][0]}" for name in dict.fromkeys(r["model"] for r in rows)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "demo" / "data")
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["fp32", "bf16"],
        default=None,
        help="default: fp32 on the CPU, bf16 on a GPU (a CPU with AMX also runs bf16 fast)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    precisions = args.precisions or (["bf16"] if cuda else ["fp32"])
    size = 8192 if cuda else 2048
    peaks = {}
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        label = f"{size}² mm on {device.type}"
        peaks[precision] = (matmul_peak(device, dtype, size), label)
        print(f"peak {precision} {peaks[precision][0] / 1e9:.1f} GFLOP/s ({label})", flush=True)
    rows = []
    for name in args.models:
        if SIZES[name][3] and not cuda:
            continue  # too big for a CPU run; measured where there is a GPU
        for precision in precisions:
            rows.append(measure(name, args.data, device, precision, args.warmup, args.steps))
            print(rows[-1], flush=True)
    command = shown_command("train_bench.py", sys.argv[1:])
    results = {"peaks": {k: {"flops": v[0], "label": v[1]} for k, v in peaks.items()}, "runs": rows}
    update_json(args.out.with_suffix(".json"), {"train_mfu": results})
    write_section(args.out, SECTION, render(peaks, rows, command))


if __name__ == "__main__":
    main()
