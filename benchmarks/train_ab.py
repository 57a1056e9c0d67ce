"""Training speed, nmtkit against OpenNMT-py, alternated over rounds so that drift cancels.

    python benchmarks/train_ab.py --work runs/bench/train-ab --rounds 3 --steps 1000 \
        [--venv-root VENV_ROOT] [--set train.precision=bf16 --label bf16] [--out FILE]

One sequential run per toolkit cannot tell a 20% difference from this machine's drift (the
same sequential comparison gave 0.96x and 1.02x on one day), so this trains both toolkits on the
peers model of `peers_bench.py` (same data, same pieces, same updates, 2 threads) in turns:
OpenNMT-py, nmtkit, OpenNMT-py, nmtkit, ... for `--rounds` rounds, one job at a time. Each
run's figure is its steady target tokens/s (real tokens, EOS counted; the first logging
interval left out, as `../shared/peers/README.md` defines it). The report gives each toolkit's
median, min and max, and the ratio of the medians with its range (nmtkit's slowest over
OpenNMT-py's fastest .. nmtkit's fastest over OpenNMT-py's slowest). `--set KEY=VALUE`
(repeatable) changes nmtkit's recipe for every round, e.g. `train.precision=bf16`; `--label`
names that variant in the report. Results go to the `train-ab` section of the Markdown file
(with --out) and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from peers_bench import (  # noqa: E402
    DATA_FLAGS,
    MODEL_FLAGS,
    PEERS,
    THREADS,
    prepare,
    timed,
)
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

SECTION = "train-ab"


def onmt_run(pieces: Path, out: Path, steps: int, venvs: Path) -> float:
    """Train OpenNMT-py with the peers harness; its steady target tokens/s."""
    os.environ["PEERS_VENV_ROOT"] = str(venvs)
    cmd = [str(PEERS / "run_peer.sh"), "onmt", str(pieces), str(steps), str(out)]
    flags = ["--batch-tokens", "4096", "--log-every", str(max(1, steps // 10))]
    timed([*cmd, *flags, "--threads", str(THREADS)], out.parent / f"{out.name}.log")
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    return float(result["train_tok_per_s_steady"])


def nmtkit_run(run: Path, steps: int, sets: list[str], log: Path) -> float:
    """Train nmtkit's peers model from scratch (`--restart`) in the prepared run directory
    `run`; its steady target tokens/s (the round's metrics are kept beside `log`)."""
    command = [sys.executable, "-m", "nmtkit", "train", "recipes/demo.yaml", "--restart"]
    command += ["--set", f"run_dir={run}", *DATA_FLAGS, *MODEL_FLAGS]
    command += ["--set", f"train.max_steps={steps}", "--set", f"train.log_every={steps // 10}"]
    command += ["--set", f"train.valid_every={steps}"]  # one validation, at the end
    command += [a for s in sets for a in ("--set", s)]
    timed(command, log, cwd=REPO)
    metrics = log.with_suffix(".metrics.jsonl")
    shutil.copyfile(run / "logs" / "metrics.jsonl", metrics)
    return steady_tok_per_s(metrics)


def steady_tok_per_s(metrics: Path) -> float:
    """Target tokens/s over the training records after the first logging interval."""
    records = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    steady = [r for r in records if r["kind"] == "train"][1:]
    tokens = sum(r["tgt_tokens"] for r in steady)
    return tokens / sum(r["tgt_tokens"] / r["tok_per_s"] for r in steady)


def summarise(runs: dict[str, list[float]]) -> dict[str, Any]:
    """Per toolkit or variant: runs, median, min, max; and for every nmtkit variant (each key
    but "onmt") over OpenNMT-py: the ratio of the medians and its range (slowest nmtkit /
    fastest OpenNMT-py .. fastest / slowest)."""
    stats = {
        name: {
            "runs": [round(v) for v in values],
            "median": round(statistics.median(values)),
            "min": round(min(values)),
            "max": round(max(values)),
        }
        for name, values in runs.items()
    }
    peer = runs["onmt"]
    ratios = {
        name: {
            "ratio": round(statistics.median(ours) / statistics.median(peer), 2),
            "range": [round(min(ours) / max(peer), 2), round(max(ours) / min(peer), 2)],
        }
        for name, ours in runs.items()
        if name != "onmt"
    }
    return {"toolkits": stats, "ratios": ratios}


def render(summary: dict[str, Any], steps: int, command: str) -> str:
    variants = [name for name in summary["toolkits"] if name != "onmt"]
    rows = [
        "The peers model (2-layer biLSTM 2x128 encoder, 2-layer LSTM 256 decoder, Luong general "
        "attention, input feeding, 1,400-piece vocabularies, built-in corpus, 4,096-token "
        f"batches), {steps:,} updates per run, {THREADS} threads, one job at a time, "
        f"OpenNMT-py and nmtkit ({', '.join(variants)}) in turns; steady target tokens/s per "
        f"run. {cpu_description()}; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| toolkit | runs (tok/s, in order) | median | min-max |",
        "|---|---|---:|---:|",
    ]
    for key in ["onmt", *variants]:
        s = summary["toolkits"][key]
        name = "OpenNMT-py" if key == "onmt" else f"nmtkit ({key})"
        runs = ", ".join(f"{v:,}" for v in s["runs"])
        rows.append(f"| {name} | {runs} | {s['median']:,} | {s['min']:,}-{s['max']:,} |")
    rows.append("")
    for key in variants:
        ratio = summary["ratios"][key]
        low, high = ratio["range"]
        rows.append(
            f"- nmtkit ({key}) / OpenNMT-py, ratio of medians: **{ratio['ratio']:.2f}x** "
            f"(range {low:.2f}x-{high:.2f}x)."
        )
    rows += ["", "```", command, "```"]
    return "\n".join(rows)


def parse_variant(text: str) -> tuple[str, list[str]]:
    """`LABEL:KEY=VALUE[,KEY=VALUE...]` (or `LABEL` alone: recipe defaults) -> (label, sets)."""
    label, _, sets = text.partition(":")
    if not label or any("=" not in s for s in sets.split(",") if s):
        raise argparse.ArgumentTypeError(f"--variant wants LABEL:KEY=VALUE[,...], got {text!r}")
    return label, [s for s in sets.split(",") if s]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "train-ab")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--venv-root", type=Path, default=Path("/tmp/nmtkit-peers"))
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default="recipe defaults")
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        type=parse_variant,
        metavar="LABEL:KEY=VALUE,...",
        help="an nmtkit variant; repeat it to run several in each round (instead of --set)",
    )
    parser.add_argument("--out", type=Path, help="write a section of this Markdown file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 20:
        parser.error("--rounds must be at least 1 and --steps at least 20")
    variants = args.variants or [(args.label, args.sets)]
    args.work.mkdir(parents=True, exist_ok=True)
    run, pieces, _ = prepare(args.work, 100)
    runs: dict[str, list[float]] = {"onmt": [], **{label: [] for label, _ in variants}}
    for i in range(1, args.rounds + 1):
        started = time.perf_counter()
        runs["onmt"].append(onmt_run(pieces, args.work / f"onmt-{i}", args.steps, args.venv_root))
        for k, (label, sets) in enumerate(variants):
            log = args.work / f"nmtkit-{k}-{i}.log"
            runs[label].append(nmtkit_run(run, args.steps, sets, log))
        print(
            json.dumps({"round": i, **{k: round(v[-1]) for k, v in runs.items()}}),
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    summary = {**summarise(runs), "variants": dict(variants), "steps": args.steps}
    print(json.dumps(summary, indent=2))
    if args.out:
        command = shown_command("train_ab.py", argv or sys.argv[1:])
        update_json(args.out.with_suffix(".json"), {SECTION: summary})
        write_section(args.out, SECTION, render(summary, args.steps, command))
    return summary


if __name__ == "__main__":
    main()
