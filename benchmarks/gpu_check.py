"""One prepared check of the CUDA path, for the few minutes a GPU is lent (`make gpu-check`).

    python benchmarks/gpu_check.py [--json FILE] [--no-docs] [--skip-tests]
        [--model CKPT --src FILE --ref FILE]

In under 8 minutes on one GPU it:
1. records the device (name, memory, compute capability, bf16 support, CUDA/cuDNN versions);
2. runs the GPU-marked tests (`pytest -m gpu`), with a time limit;
3. times training at the Marian size (embeddings 512, hidden 1024, 32k vocabularies, bf16 and
   fp32 autocast off): nmtkit's own update (`train.loop._update`: forward, label-smoothed
   loss, backward, clipping, Adam) on length-bucketed batches of random ids, target tokens/s
   after warm-up;
4. times greedy and beam-5 search at large batches on the same model (random weights: every
   hypothesis runs to the length limit, source length + 5 with `max_len_ratio` 1, so
   sentences/s is what a trained model of these lengths would do at worst);
5. with `--model/--src/--ref`, decodes a trained model's test set (repeated to 8,000 lines, so
   that large batches fill) with `Translator` in fp32 and bf16, beam 5 and greedy, at two batch
   sizes: sentences/s and BLEU of the first copy, which must not move between precisions;
then writes one JSON summary (stdout and `--json`) and the `gpu-check` section of
docs/benchmarks.md. The JSON also says whether two reference figures were reached (`TARGETS`:
100k target tokens/s training, 5k sentences/s beam 5 on an H200); the docs show the figures.

Without a GPU it says "no GPU", runs steps 3 and 4 at toy size on the CPU so that the code
keeps working (CI runs it), writes the JSON and leaves the docs alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import shown_command, shown_path, update_json, write_section  # noqa: E402
from train_bench import SIZES, update_run  # noqa: E402

from nmtkit.data.batching import Batch, pad  # noqa: E402
from nmtkit.device import autocast_for  # noqa: E402
from nmtkit.search.beam import beam_search  # noqa: E402
from nmtkit.search.greedy import greedy_hypotheses  # noqa: E402
from nmtkit.train.loop import _update  # noqa: E402

SECTION = "gpu-check"
TARGETS = {"train_tok_per_s": 100_000, "beam5_sent_per_s": 5_000}
# (train batch tokens, train steps, decode sentences per batch, decode sentences)
FULL = {"model": "marian", "batch_tokens": 16_384, "warmup": 5, "steps": 40,
        "decode_batch": 1024, "decode_sentences": 8192}  # fmt: skip
SMOKE = {"model": "demo", "batch_tokens": 600, "warmup": 1, "steps": 2,
         "decode_batch": 16, "decode_sentences": 32}  # fmt: skip
VOCAB = {name: SIZES[name][2] for name in ("marian", "demo")}


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "bf16": torch.cuda.is_bf16_supported(),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "devices": torch.cuda.device_count(),
        }
    return info


def gpu_test_files() -> list[str]:
    """The test files that hold GPU-marked tests (collecting only these keeps a machine that
    lacks a test-only package, such as a lent GPU's image, from failing at collection)."""
    return sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("test_*.py")
        if "mark.gpu" in path.read_text(encoding="utf-8")
    )


def gpu_tests(limit_s: int) -> dict[str, Any]:
    """`pytest -m gpu` in a subprocess, bounded in time; the summary line and the exit code."""
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-rfE"]
    cmd += gpu_test_files()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=limit_s, check=False
        )
    except subprocess.TimeoutExpired:
        return {"exit_code": None, "summary": f"timed out after {limit_s} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        print(done.stdout[-6000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
    return {
        "exit_code": done.returncode,
        "summary": lines[-1] if lines else done.stderr[-300:],
        "seconds": round(time.perf_counter() - started, 1),
    }


def random_batches(vocab: int, batch_tokens: int, rng: np.random.Generator) -> Any:
    """Endless batches of `batch_tokens` target tokens (padding included): sentences of one
    length each (10-50 pieces, a length-bucketed batch), random ids."""
    while True:
        length = int(rng.integers(10, 51))
        n = max(1, batch_tokens // (length + 1))
        src = [rng.integers(4, vocab, length) for _ in range(n)]
        tgt = [rng.integers(4, vocab, length) for _ in range(n)]
        yield Batch(
            pad([*s, 3] for s in src),
            torch.full((n,), length + 1),
            pad([2, *t] for t in tgt),
            pad([*t, 3] for t in tgt),
            torch.arange(n),
        )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_training(device: torch.device, precision: str, size: dict[str, Any]) -> dict[str, Any]:
    run = update_run(size["model"], device, precision)
    batches = random_batches(VOCAB[size["model"]], size["batch_tokens"], np.random.default_rng(1))
    tokens, started = 0, 0.0
    for step in range(size["warmup"] + size["steps"]):
        batch = next(batches)
        real = int((batch.tgt_out != 0).sum())
        if step == size["warmup"]:
            sync(device)
            started = time.perf_counter()
        _update(run, [(batch, 1.0)], real)  # type: ignore[arg-type]
        tokens += real if step >= size["warmup"] else 0
    sync(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {
        "model": size["model"],
        "precision": precision,
        "batch_tokens": size["batch_tokens"],
        "steps": size["steps"],
        "tok_per_s": round(tokens / seconds),
        "peak_memory_gib": None if peak is None else round(peak, 1),
    }


def time_decoding(device: torch.device, precision: str, size: dict[str, Any]) -> list[dict]:
    """Greedy and beam 5 on a fresh model of the size (random weights), large batches."""
    model = update_run(size["model"], device, precision).model.eval()
    rng = np.random.default_rng(2)
    vocab, per_batch = VOCAB[size["model"]], size["decode_batch"]
    rows = []
    for search in ("greedy", "beam 5"):
        sentences = tokens = 0
        for i in range(size["decode_sentences"] // per_batch + 1):  # the first is a warm-up
            lengths = rng.integers(10, 31, per_batch)
            src = pad([*rng.integers(4, vocab, n), 3] for n in lengths).to(device)
            src_lens = torch.as_tensor(lengths + 1, device=device)
            if i == 1:
                sync(device)
                started = time.perf_counter()
            with torch.inference_mode(), autocast_for(device, precision):
                if search == "greedy":
                    found = greedy_hypotheses(model, src, src_lens, max_len_ratio=1.0)
                else:
                    found = [
                        h[0]
                        for h in beam_search(
                            model, src, src_lens, beam_size=5, alpha=0.6, max_len_ratio=1.0
                        )
                    ]
            if i >= 1:
                sentences += per_batch
                tokens += sum(len(h.tokens) + 1 for h in found)
        sync(device)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "search": search,
                "precision": precision,
                "batch_sentences": per_batch,
                "sent_per_s": round(sentences / seconds, 1),
                "tgt_tok_per_s": round(tokens / seconds),
            }
        )
    return rows


def time_trained(
    device: torch.device, model: Path, src: Path, ref: Path, batches: list[int], total: int
) -> list[dict[str, Any]]:
    """A trained model on a real test set: sent/s and BLEU per precision, search and batch."""
    from nmtkit.evaluate.scores import score_corpus
    from nmtkit.translate import Translator, load_model

    lines = src.read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    repeated = (lines * (total // len(lines) + 1))[: max(total, len(lines))] if lines else []
    member = load_model(model, device)
    rows = []
    for precision in ("fp32", "bf16"):
        translator = Translator([member], device, precision)
        for search, choice in (("beam 5", {"beam_size": 5}), ("greedy", {"greedy": True})):
            for batch_tokens in batches:
                options = translator.defaults.replace(
                    batch_tokens=batch_tokens, shortlist=False, **choice
                )
                translator.translate(repeated[:256], options)  # warm-up
                sync(device)
                started = time.perf_counter()
                found = translator.translate(repeated, options)
                sync(device)
                seconds = time.perf_counter() - started
                texts = [r.texts[0] for r in found[: len(lines)]]
                rows.append(
                    {
                        "search": search,
                        "precision": precision,
                        "batch_tokens": batch_tokens,
                        "sentences": len(repeated),
                        "sent_per_s": round(len(repeated) / seconds, 1),
                        "bleu": round(score_corpus(texts, refs).bleu, 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def render(summary: dict[str, Any], command: str) -> str:
    dev = summary["device"]
    lines = [
        f"{dev.get('name')} ({dev.get('memory_gib')} GiB, capability {dev.get('capability')}), "
        f"torch {dev['torch']}, CUDA {dev.get('cuda')}, cuDNN {dev.get('cudnn')}. "
        f"GPU tests: {summary['tests']['summary']}.",
        "",
        "| what | precision | batch | figure |",
        "|---|---|---:|---:|",
    ]
    for row in summary["train"]:
        lines.append(
            f"| train {row['model']} | {row['precision']} | {row['batch_tokens']:,} tok | "
            f"{row['tok_per_s']:,} tgt tok/s |"
        )
    for row in summary["decode"]:
        lines.append(
            f"| {row['search']} | {row['precision']} | {row['batch_sentences']:,} sent | "
            f"{row['sent_per_s']:,} sent/s ({row['tgt_tok_per_s']:,} tok/s) |"
        )
    if summary.get("trained"):
        lines += [
            "",
            f"Trained model `{shown_path(summary['trained_model'], 'MODEL')}` on its test set "
            "(repeated to 8,000 lines; BLEU of the first copy), whole `Translator.translate` "
            "calls timed:",
            "",
            "| search | precision | batch | sent/s | BLEU |",
            "|---|---|---:|---:|---:|",
        ]
        for row in summary["trained"]:
            lines.append(
                f"| {row['search']} | {row['precision']} | {row['batch_tokens']:,} tok | "
                f"{row['sent_per_s']:,} | {row['bleu']} |"
            )
    for key, error in summary.get("errors", {}).items():
        lines += ["", f"Step `{key}` failed: `{error.strip().splitlines()[-1]}`"]
    lines += ["", "```", command, "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    parser.add_argument("--test-limit", type=int, default=240, help="seconds for pytest -m gpu")
    parser.add_argument("--model", type=Path, help="a trained checkpoint to decode (step 5)")
    parser.add_argument("--src", type=Path, help="its test sources")
    parser.add_argument("--ref", type=Path, help="its test references")
    parser.add_argument(
        "--batch-tokens", type=int, nargs="+", default=[16_000, 64_000], help="for step 5"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    if not gpu:
        print("no GPU: torch.cuda.is_available() is False; timing the code path at toy size")
    size = FULL if gpu else SMOKE
    summary: dict[str, Any] = {"gpu": gpu, "device": device_info()}
    summary["tests"] = (
        gpu_tests(args.test_limit) if gpu and not args.skip_tests else {"summary": "not run"}
    )
    if gpu:
        torch.backends.cudnn.benchmark = True
    precisions = ["bf16", "fp32"] if gpu else ["fp32"]
    # on a GPU a failing step is recorded and the next one still runs: the lease is short
    summary["errors"] = {}

    def step(key: str, work: Any) -> None:
        try:
            summary[key] = work()
        except Exception:
            if not gpu:
                raise
            traceback.print_exc()
            summary[key], summary["errors"][key] = [], traceback.format_exc(limit=4)[-1500:]

    step("train", lambda: [time_training(device, p, size) for p in precisions])
    step("decode", lambda: [row for p in precisions for row in time_decoding(device, p, size)])
    if args.model:
        if not (args.src and args.ref):
            parser.error("--model needs --src and --ref")
        summary["trained_model"] = str(args.model)
        batches, total = (args.batch_tokens, 8000) if gpu else ([2_000], 0)
        step(
            "trained",
            lambda: time_trained(device, args.model, args.src, args.ref, batches, total),
        )
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if gpu:
        best_train = max((r["tok_per_s"] for r in summary["train"]), default=0)
        beams = [r["sent_per_s"] for r in summary["decode"] if r["search"] == "beam 5"]
        best_beam = max(beams, default=0)
        summary["targets_met"] = {
            "train_tok_per_s": best_train >= TARGETS["train_tok_per_s"],
            "beam5_sent_per_s": best_beam >= TARGETS["beam5_sent_per_s"],
        }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    if gpu and not args.no_docs:
        command = shown_command("gpu_check.py", argv or sys.argv[1:])
        update_json(REPO / "docs" / "benchmarks.json", {"gpu-check": summary})
        write_section(REPO / "docs" / "benchmarks.md", SECTION, render(summary, command))
    return summary


if __name__ == "__main__":
    main()
