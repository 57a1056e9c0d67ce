"""Where bf16 training wins or loses on this CPU: fp32, bf16 autocast and the bf16 copy
(`train.mixed.StepWeights`), each in its own process, in turns, on the same batches.

    python benchmarks/train_bf16.py --work runs/bench/train-bf16 [--data RUN/data] [--batches 60] \
        [--rounds 2] [--repeat] [--out FILE]

Each process runs `train.loop._update` of the peers model (`train_bench.SIZES`) over the same
`--batches` 4,096-token batches of the prepared data's lengths (random ids), never repeating a
batch: as in real training, every batch brings new matrix shapes, and bf16 matrix products on
a CPU pay oneDNN's code generation once per new shape (`repeat` shows the same batches run
again, which is what a benchmark looping over a few batches would see). The report gives each
variant's tok/s per round and its median, and the process's peak RSS. Without `--data` the
peers model's data is prepared in `--work` (as `peers_bench.py` does). With --out, results go
to the `train-bf16` section of that Markdown file and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

SECTION = "train-bf16"

VARIANTS = ("fp32", "autocast", "copy")
NAMES = {
    "fp32": "fp32",
    "autocast": "bf16 autocast (fp32 model)",
    "copy": "bf16 copy, fp32 master (`train.precision: bf16`)",
}


def child(variant: str, data: Path, batches: int, repeat: bool) -> dict[str, float]:
    import torch
    from train_bench import SIZES, random_batches, update_run

    from nmtkit.device import autocast_for
    from nmtkit.train.loop import _update
    from nmtkit.train.mixed import StepWeights

    torch.set_num_threads(2)
    device = torch.device("cpu")
    run = update_run("peers", device, "fp32" if variant == "fp32" else "bf16")
    if variant == "autocast":
        run.weights = StepWeights(run.model, run.model, autocast_for(device, "bf16"))
        run.ddp = run.model
    stream = random_batches(data, SIZES["peers"][2])
    work = [next(stream) for _ in range(batches)]
    if repeat:
        for batch in work:
            _update(run, [(batch, 1.0)], int((batch.tgt_out != 0).sum()))
    tokens, started = 0, time.perf_counter()
    for batch in work:
        real = int((batch.tgt_out != 0).sum())
        _update(run, [(batch, 1.0)], real)
        tokens += real
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tok_per_s": tokens / seconds, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared data (default: prepared in --work)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "train-bf16")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", action="store_true", help="time a second pass over them")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", type=Path, help="write a section of this Markdown file")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.batches, args.repeat)))
        return
    if args.data is None:
        from peers_bench import prepare

        args.work.mkdir(parents=True, exist_ok=True)
        args.data = prepare(args.work, 100)[0] / "data"
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--child", variant, "--data", str(args.data)]
            cmd += ["--batches", str(args.batches)] + (["--repeat"] if args.repeat else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ)
            runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(variant, runs[variant][-1], flush=True)
    summary = summarise(runs)
    text = render(summary, args, shown_command("train_bf16.py", sys.argv[1:]))
    print(text)
    if args.out:
        update_json(args.out.with_suffix(".json"), {SECTION: summary})
        write_section(args.out, SECTION, text)


def summarise(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per variant: tok/s per round, the median, and the largest peak RSS (MiB)."""
    out = {}
    for variant, results in runs.items():
        speeds = [r["tok_per_s"] for r in results]
        out[variant] = {
            "runs": [round(s) for s in speeds],
            "median": round(statistics.median(speeds)),
            "rss_mib": round(max(r["rss_mib"] for r in results)),
        }
    return out


def render(summary: dict[str, dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    base = summary.get("fp32", {}).get("median")
    mode = "the same batches a second time" if args.repeat else "each batch once (new shapes)"
    rows = [
        f"The peers model's update (`train.loop._update`), {args.batches} batches of 4,096 "
        f"tokens, {mode}; one process per variant and round, in turns; 2 threads; "
        f"{cpu_description()}; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| variant | tok/s per round | median | x fp32 | peak RSS |",
        "|---|---|---:|---:|---:|",
    ]
    for variant, s in summary.items():
        ratio = f"{s['median'] / base:.2f}" if base else "-"
        runs = ", ".join(f"{v:,}" for v in s["runs"])
        rows.append(
            f"| {NAMES[variant]} | {runs} | {s['median']:,} | {ratio} | {s['rss_mib']:,} MiB |"
        )
    cache = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    if cache:
        rows += ["", f"ONEDNN_PRIMITIVE_CACHE_CAPACITY={cache} for every variant."]
    rows += ["", "```", command, "```"]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
