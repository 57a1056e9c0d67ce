"""The length study: does BLEU fall with source length without attention, and not with it?

    python scripts/length_study.py [--steps N] [--systems encdec,bahdanau,...]   (make length-study)

Runs the recipes in recipes/length-study/ through the nmtkit CLI, each command in its own
process, exactly as a user would:

1. `nmtkit prepare` once (every recipe shares `data_dir: runs/length-study/data`);
2. `nmtkit train` each system for the same number of updates (`--set train.max_steps=N`);
3. `nmtkit evaluate RECIPE` each system: beam search over the test split, per-system report;
4. `nmtkit evaluate --hyp encdec=... --compare NAME=... --json --plot`: every system scored by
   source length, paired bootstrap tests against `encdec`;
5. writes docs/length-study.md: the tables from that JSON, the plot, the training figures
   (updates, time, parameters, validation BLEU) and the study's wall time.

A finished system is not retrained: `nmtkit train` resumes from last.pt and stops at once when
the step budget is already reached (delete runs/length-study/NAME to redo one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes" / "length-study"
SYSTEMS = ["encdec", "encdec-gru", "bahdanau", "luong-general", "multihead"]
BASELINE = "encdec"
DISCUSSION_START = "<!-- discussion:start (hand-written; kept when the study is rerun) -->"
DISCUSSION_END = "<!-- discussion:end -->"
# The same study on real text (benchmarks/multi30k_bench.py --length-study writes it); kept.
REAL_START, REAL_END = "<!-- multi30k:start -->", "<!-- multi30k:end -->"


@dataclass
class SystemRun:
    name: str
    recipe: Path
    run_dir: Path
    train_seconds: float = 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="updates per system")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "length-study.md")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "length-study")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override for every system (e.g. a smaller corpus for a quick check)",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.systems.split(",") if n]
    if BASELINE not in names:
        parser.error(f"--systems must include the baseline {BASELINE!r}")
    work = args.work.resolve()
    started = time.perf_counter()
    runs = [SystemRun(n, RECIPES / f"{n}.yaml", work / n) for n in names]
    data_dir = work / "data"
    shared = [f"data_dir={data_dir}", *args.overrides]
    if args.steps is not None:
        shared.append(f"train.max_steps={args.steps}")
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def sets(run: SystemRun) -> list[str]:
        return [a for kv in [f"run_dir={run.run_dir}", *shared] for a in ("--set", kv)]

    prepare_seconds = nmtkit(["prepare", runs[0].recipe, *sets(runs[0])], log_dir / "prepare.log")
    for run in runs:
        log = log_dir / f"{run.name}.log"
        run.train_seconds = nmtkit(["train", run.recipe, *sets(run)], log)
    for run in runs:
        log = log_dir / f"{run.name}.evaluate.log"
        nmtkit(["evaluate", run.run_dir], log)

    recipe = yaml.safe_load((runs[0].run_dir / "recipe.resolved.yaml").read_text("utf-8"))
    src, tgt = recipe["data"]["src_lang"], recipe["data"]["tgt_lang"]
    hyps = {run.name: run.run_dir / "translations" / f"test.{tgt}" for run in runs}
    buckets = ",".join(str(b) for b in recipe["evaluate"]["buckets"])
    report_json = work / "compare.json"
    plot = args.out.with_suffix(".png")
    compare = [
        "evaluate",
        "--hyp",
        f"{BASELINE}={hyps[BASELINE]}",
        *[arg for n in names if n != BASELINE for arg in ("--compare", f"{n}={hyps[n]}")],
        "--ref",
        data_dir / "text" / f"test.{tgt}",
        "--src",
        data_dir / "text" / f"test.{src}",
        "--buckets",
        buckets,
        "--json",
        report_json,
        "--plot",
        plot,
    ]
    nmtkit(compare, log_dir / "compare.log")
    wall = time.perf_counter() - started

    report = json.loads(report_json.read_text(encoding="utf-8"))
    text = render(
        kept_discussion(args.out),
        kept_discussion(args.out, (REAL_START, REAL_END)),
        report,
        runs,
        plot,
        compare,
        args.steps,
        prepare_seconds,
        wall,
        data_dir,
    )
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} and {plot} in {wall / 60:.1f} min")
    return 0


def nmtkit(args: list[Any], log: Path) -> float:
    """Run `nmtkit ARGS` in its own process, tee its output to `log`; seconds taken."""
    cmd = [sys.executable, "-m", "nmtkit", *(str(a) for a in args)]
    print("$ nmtkit " + shlex.join(cmd[3:]), flush=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if not line.startswith(" "):  # skip the sample translations and table bodies
                print("  " + line.rstrip(), flush=True)
        code = proc.wait()
    if code:
        sys.exit(f"nmtkit {args[0]} failed (exit {code}); its output is in {log}")
    return time.perf_counter() - started


# ----------------------------------------------------------------------------------- report


def kept_discussion(
    path: Path, markers: tuple[str, str] = (DISCUSSION_START, DISCUSSION_END)
) -> str:
    """The text between the markers of an earlier docs/length-study.md: the hand-written
    discussion, or (with REAL_START/END) the real-text section that another script writes."""
    if not path.is_file():
        return "(No discussion yet: write it between these markers; regenerating keeps it.)"
    text = path.read_text(encoding="utf-8")
    start, end = text.find(markers[0]), text.find(markers[1])
    if start < 0 or end < start:
        return ""
    return text[start + len(markers[0]) : end].strip("\n")


def render(
    discussion: str,
    real_text: str,
    report: dict[str, Any],
    runs: list[SystemRun],
    plot: Path,
    compare: list[Any],
    steps: int | None,
    prepare_seconds: float,
    wall: float,
    data_dir: Path,
) -> str:
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    test = manifest["splits"]["test"]
    lines = [
        "# Length study: BLEU by source length, with and without attention",
        "",
        "Generated by `make length-study` (`scripts/length_study.py`); do not edit by hand.",
        "",
        "Every system is trained on the same prepared data (the built-in English→German corpus,",
        f"{manifest['splits']['train']['pairs']:,} training pairs, joint BPE "
        f"{manifest['tokenizer']['src_vocab_size']:,}) for the same number of updates, then",
        f"translates the {test['pairs']:,}-sentence test split with beam search. Scores are",
        "sacrebleu BLEU and chrF by source length in words, with 95% bootstrap intervals; p is",
        f"the paired-bootstrap p-value against `{BASELINE}` (* for p < 0.05).",
        "",
        f"**Wall time of the whole study: {wall / 60:.1f} min** on {machine()} "
        f"(prepare {prepare_seconds:.0f} s).",
        "",
        f"![BLEU by source length]({plot.name})",
        "",
        "## Systems",
        "",
        "| system | cell | attention | input feeding | decoder init | parameters | updates "
        "| train time | valid BLEU (greedy) | test BLEU | test chrF |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(system_row(run, report))
    for metric, title in (("bleu", "BLEU"), ("chrf", "chrF")):
        lines += ["", f"## {title} by source length", "", *bucket_table(report, metric)]
    lines += [
        "",
        "## Reading it",
        "",
        findings(report),
        "",
        DISCUSSION_START,
        discussion,
        DISCUSSION_END,
        "",
        REAL_START,
        real_text,
        REAL_END,
        "",
        "## Reproduce",
        "",
        "```",
        "make length-study" + ("" if steps is None else f" LENGTH_STUDY_STEPS={steps}"),
        "```",
        "",
        "which runs `nmtkit prepare` once, then for every system `nmtkit train RECIPE` and `nmtkit",
        "evaluate RUN_DIR` (beam search over the test split), and finally:",
        "",
        "```",
        "nmtkit " + shlex.join(str(a) for a in compare).replace(str(ROOT) + "/", ""),
        "```",
        "",
        "Signatures:",
        "",
        *[f"- {name}: `{sig}`" for name, sig in report["signatures"].items()],
        "",
    ]
    return "\n".join(lines)


def system_row(run: SystemRun, report: dict[str, Any]) -> str:
    resolved = run.run_dir / "recipe.resolved.yaml"
    model = yaml.safe_load(resolved.read_text(encoding="utf-8"))["model"]
    ckpt = torch.load(
        run.run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True
    )
    tensors = {t.data_ptr(): t.numel() for t in ckpt["model"].values()}  # tied weights once
    valid = [
        json.loads(line)
        for line in (run.run_dir / "logs" / "metrics.jsonl").read_text().splitlines()
        if '"valid"' in line
    ]
    last_valid = f"{valid[-1]['bleu']:.1f}" if valid else "-"
    overall = report["overall"][run.name]
    return (
        f"| {run.name} | {model.get('cell', 'lstm')} | {model.get('attention')} "
        f"| {model.get('input_feeding')} | {model.get('init')} "
        f"| {sum(tensors.values()) / 1e6:.2f} M "
        f"| {ckpt['step']:,} | {run.train_seconds / 60:.1f} min | {last_valid} "
        f"| {cell(overall['bleu'])} | {cell(overall['chrf'])} |"
    )


def bucket_table(report: dict[str, Any], metric: str) -> list[str]:
    buckets = report["buckets"]
    head = "| system | " + " | ".join(b["label"] for b in buckets) + " |"
    rows = [head, "|---|" + "---:|" * len(buckets)]
    rows.append("| *sentences* | " + " | ".join(f"*{b['sentences']}*" for b in buckets) + " |")
    for name in report["systems"]:
        cells = []
        for b in buckets:
            scores = (b["scores"] or {}).get(name)
            score = None if scores is None else scores[metric]
            cells.append("-" if score is None else cell(score, with_p=True))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def cell(score: dict[str, Any], with_p: bool = False) -> str:
    low, high = score["ci95"]
    text = f"{score['score']:.1f} ±{(high - low) / 2:.1f}"
    if with_p and score.get("p_value") is not None:
        text += f" (p {score['p_value']:.3f}{'*' if score['significant'] else ''})"
    return text


def findings(report: dict[str, Any]) -> str:
    """The measured drop from the shortest to the longest non-empty bucket, per system."""
    buckets = [b for b in report["buckets"] if b["sentences"] > 0]
    first, last = buckets[0], buckets[-1]
    parts = []
    for name in report["systems"]:
        short = first["scores"][name]["bleu"]["score"]
        long = last["scores"][name]["bleu"]["score"]
        kept = 100 * long / short if short else 0.0
        parts.append(
            f"- `{name}`: {short:.1f} BLEU on sentences of {first['label']} words, "
            f"{long:.1f} on {last['label']} ({long - short:+.1f} points; {kept:.0f}% of its "
            "short-sentence score)."
        )
    return "BLEU from the shortest to the longest bucket (measured, not asserted):\n\n" + "\n".join(
        parts
    )


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
        + (f", CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "")
    )


if __name__ == "__main__":
    raise SystemExit(main())
