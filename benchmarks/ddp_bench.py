"""Training throughput on 1 vs N processes (DistributedDataParallel) of this machine.

    python benchmarks/ddp_bench.py --steps 40 --out docs/benchmarks.md

Prepares the demo recipe's corpus once (at `--pairs` training pairs), then trains the demo model
for `--steps` updates in each configuration, one after the other in this run: 1 process with
all cores, 1 process with 1 thread, and N processes (`nmtkit train --nproc N`) with
cores / N threads each. Same recipe, same global batches (`train.batch_tokens`), no dropout,
so the N-process run must end with the 1-process parameters (up to float summation order): the
largest difference is reported too. Throughput is steady target tokens/s (log intervals after
the first) and whole-run (the command's wall clock, start-up and final validation included).
Results go to the `ddp` section of the Markdown file and to `<out>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

SECTION = "ddp"


def train(
    recipe: Path, run_dir: Path, data: list[str], steps: int, nproc: int, threads: int
) -> dict[str, Any]:
    """One timed training run from scratch on the prepared `data` (recipe settings)."""
    sets = [
        *data,
        f"run_dir={run_dir}",
        "model.dropout=0",
        f"train.max_steps={steps}",
        f"train.valid_every={steps}",
        "train.log_every=10",
        "train.max_time=null",
        "train.early_stopping.patience=null",
    ]
    cmd = [sys.executable, "-m", "nmtkit", "train", str(recipe), "--restart"]
    cmd += [f"--set={s}" for s in sets] + ([f"--nproc={nproc}"] if nproc > 1 else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    log = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").open()]
    train_records = [r for r in log if r["kind"] == "train"]
    steady = train_records[1:]
    tokens = sum(r["tgt_tokens"] for r in steady)
    seconds = sum(r["tgt_tokens"] / r["tok_per_s"] for r in steady)
    return {
        "nproc": nproc,
        "threads_per_process": threads,
        "steps": steps,
        "tgt_tokens": sum(r["tgt_tokens"] for r in train_records),
        "steady_tok_per_s": round(tokens / seconds),
        "whole_run_tok_per_s": round(sum(r["tgt_tokens"] for r in train_records) / wall),
        "wall_s": round(wall, 1),
        "final_loss": train_records[-1]["loss"],
    }


def max_difference(a: Path, b: Path) -> float:
    from nmtkit.checkpoint import Checkpoint

    x = Checkpoint.read(a / "checkpoints" / "last.pt").model
    y = Checkpoint.read(b / "checkpoints" / "last.pt").model
    return max(float((x[k] - y[k]).abs().max()) for k in x)


def machine() -> str:
    import torch

    return f"{cpu_description()}, torch {torch.__version__}"


def render(
    rows: list[dict[str, Any]], diff: float, pairs: int, command: str, measured: dict[str, str]
) -> str:
    """The section; `measured` names the machine and date of the runs (kept in the JSON, so
    --render does not claim today's)."""
    base = rows[0]["steady_tok_per_s"]
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {measured.get('machine', 'not recorded')}; measured "
        f"{measured.get('date', 'on a date not recorded')}, one run at a time.  ",
        f"Demo model and recipe (dropout 0), {pairs:,} training pairs of the built-in corpus, "
        f"{rows[0]['steps']} updates of the same global 4,096-token batches in every row.",
        "",
        "| processes | threads each | steady tok/s | vs row 1 | whole-run tok/s | wall (s) "
        "| final train loss |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['nproc']} | {r['threads_per_process']} | {r['steady_tok_per_s']:,} "
        f"| {r['steady_tok_per_s'] / base:.2f} | {r['whole_run_tok_per_s']:,} | {r['wall_s']} "
        f"| {r['final_loss']} |"
        for r in rows
    ]
    one_thread, many = rows[1], rows[-1]
    lines += [
        "",
        f"Largest parameter difference after {rows[0]['steps']} updates, {many['nproc']} "
        f"processes vs 1: **{diff:.1e}** (float summation order; the updates are the same, as "
        "the equal final losses show).",
        "",
        f"{many['nproc']} processes of {many['threads_per_process']} thread(s) train "
        f"{many['steady_tok_per_s'] / one_thread['steady_tok_per_s']:.2f}x as fast as one "
        "process of 1 thread (steady): the gradient all-reduce per update costs little. Against "
        f"one process using every core they are {many['steady_tok_per_s'] / base:.2f}x steady "
        f"and {many['whole_run_tok_per_s'] / rows[0]['whole_run_tok_per_s']:.2f}x whole-run "
        "(starting the processes and the process group takes a few seconds). On a CPU, "
        "processes are a way to check the distributed path rather than a speed-up; the point of "
        "them is one process per GPU.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the section from <out>.json, no runs"
    )
    args = parser.parse_args()
    command = shown_command(
        "ddp_bench.py",
        ["--steps", str(args.steps), "--pairs", str(args.pairs), "--nproc", str(args.nproc)],
    )
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))["ddp"]
        render_args = (saved["runs"], saved["max_param_diff"], saved["pairs"], saved["command"])
        write_section(args.out, SECTION, render(*render_args, saved))
        return
    cores = os.cpu_count() or 1
    recipe = REPO / "recipes" / "demo.yaml"
    with tempfile.TemporaryDirectory(prefix="nmtkit-ddp-") as tmp:
        data = [f"data_dir={tmp}/data", f"data.source.synthetic.pairs={args.pairs}"]
        # run_dir too: prepare writes the resolved recipe into the run directory, and the
        # recipe's default one is runs/demo, the user's own run
        prep = [*data, f"run_dir={tmp}/prepared"]
        subprocess.run(
            [sys.executable, "-m", "nmtkit", "prepare", str(recipe), *(f"--set={s}" for s in prep)],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rows, runs = [], []
        configs = [(1, cores), (1, 1), (args.nproc, max(1, cores // args.nproc))]
        for i, (nproc, threads) in enumerate(configs):
            run_dir = Path(tmp) / f"run{i}"
            rows.append(train(recipe, run_dir, data, args.steps, nproc, threads))
            runs.append(run_dir)
            print(json.dumps(rows[-1]), flush=True)
        diff = max_difference(runs[0], runs[-1])
    measured = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    results = {"runs": rows, "max_param_diff": diff, "pairs": args.pairs, "command": command}
    results |= measured
    update_json(args.out.with_suffix(".json"), {"ddp": results})
    write_section(args.out, SECTION, render(rows, diff, args.pairs, command, measured))


if __name__ == "__main__":
    main()
