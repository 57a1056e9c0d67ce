"""Decoding throughput of a trained run: greedy and beam search at several batch budgets.

    python benchmarks/decode_bench.py runs/demo --batch-tokens 1000 4000 16000

Loads the run's best checkpoint once, then for each (search, batch budget) translates the run's
test split in this process and times the search alone (model loading and a 64-line warm-up
excluded; SentencePiece encoding and decoding included). Reports sentences/s and target
tokens/s (EOS counted, as the peers harness counts), and BLEU against the references, so a
speed-up that changes the output shows.

Then decode time against source length: source sentences of the run's train and test splits
grouped by length in words (LENGTH_BUCKETS, up to --per-bucket sentences each), each group
translated on its own (greedy and beam 5, 4,000-token batches). The time per source word
stays flat if decoding is linear in the length; the growth exponent k in time/sentence ~ L^k
is fitted by least squares on the logs. Results go to the `decode` section of the Markdown
file and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, shown_path, update_json, write_section  # noqa: E402

from nmtkit.data.manifest import PreparedData  # noqa: E402
from nmtkit.evaluate.run import find_test_splits, open_run  # noqa: E402
from nmtkit.evaluate.scores import score_corpus  # noqa: E402
from nmtkit.translate import DecodeOptions, Translator  # noqa: E402

SECTION = "decode"
SEARCHES = {"greedy": {"greedy": True}, "beam 5": {"beam_size": 5}}
LENGTH_BUCKETS = [(1, 10), (11, 20), (21, 30), (31, 40), (41, 60), (61, 100)]


def measure(translator, lines: list[str], refs: list[str], options: DecodeOptions) -> dict:
    list(translator.translate(lines[:64], options))  # warm-up: allocator, threads
    start = time.perf_counter()
    results = list(translator.translate(lines, options))
    seconds = time.perf_counter() - start
    tokens = sum(len(r.hyps[0].tokens) + 1 for r in results if r.hyps)
    return {
        "seconds": round(seconds, 2),
        "sent_per_s": round(len(lines) / seconds, 1),
        "tgt_tok_per_s": round(tokens / seconds),
        "bleu": round(score_corpus([r.texts[0] for r in results], refs).bleu, 2),
    }


def length_study(translator, lines: list[str], recipe, per_bucket: int) -> list[dict]:
    """Seconds per sentence and per source word for sentences of each length bucket."""
    rows = []
    for name, search in SEARCHES.items():
        options = translator.defaults.replace(batch_tokens=4000, **search)
        list(translator.translate(lines[:64], options))  # warm-up
        for low, high in LENGTH_BUCKETS:
            group = [line for line in lines if low <= len(line.split()) <= high][:per_bucket]
            if not group:
                continue
            start = time.perf_counter()
            results = list(translator.translate(group, options))
            seconds = time.perf_counter() - start
            words = sum(len(line.split()) for line in group)
            out_tokens = sum(len(r.hyps[0].tokens) + 1 for r in results if r.hyps)
            rows.append(
                {
                    "search": name,
                    "bucket": f"{low}-{high}",
                    "sentences": len(group),
                    "mean_src_words": round(words / len(group), 1),
                    "mean_out_tokens": round(out_tokens / len(group), 1),
                    "ms_per_sentence": round(1000 * seconds / len(group), 2),
                    "ms_per_src_word": round(1000 * seconds / words, 3),
                }
            )
            print(rows[-1], flush=True)
    return rows


def growth_exponent(rows: list[dict], search: str) -> float:
    """Least-squares slope of log(ms per sentence) on log(mean source words)."""
    points = [
        (math.log(r["mean_src_words"]), math.log(r["ms_per_sentence"]))
        for r in rows
        if r["search"] == search
    ]
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den if den else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory (or recipe) with a trained model")
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--lines", type=int, default=None, help="first N test lines (all)")
    parser.add_argument("--per-bucket", type=int, default=200, help="sentences per length bucket")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()

    paths, recipe = open_run(args.run)
    data = PreparedData.open(paths.data)
    split = find_test_splits(data, paths.root)[0]
    lines, refs = data.read_text(split, "src"), data.read_text(split, "tgt")
    lines, refs = lines[: args.lines], refs[: args.lines]
    translator = Translator.load(paths.root, device="cpu")
    rows = []
    for name, search in SEARCHES.items():
        for budget in args.batch_tokens:
            options = translator.defaults.replace(batch_tokens=budget, **search)
            row = {
                "search": name,
                "batch_tokens": budget,
                **measure(translator, lines, refs, options),
            }
            rows.append(row)
            print(row, flush=True)

    train_lines = data.read_text("train", "src")
    by_length = length_study(translator, lines + train_lines, recipe, args.per_bucket)
    exponents = {name: round(growth_exponent(by_length, name), 2) for name in SEARCHES}

    command = shown_command("decode_bench.py", sys.argv[1:], positional=["RUN"])
    table = [
        "| search | batch tokens | seconds | sentences/s | target tokens/s | BLEU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {r['search']} | {r['batch_tokens']:,} | {r['seconds']} | {r['sent_per_s']:,} | "
        f"{r['tgt_tok_per_s']:,} | {r['bleu']} |"
        for r in rows
    ]
    body = "\n".join(
        [
            f"Model `{shown_path(paths.root, 'RUN')}`, its {split} split: {len(lines):,} "
            f"sentences; {cpu_description()}, {torch.get_num_threads()} threads, torch "
            f"{torch.__version__}; measured {time.strftime('%Y-%m-%d')}. Search time only "
            "(model loaded and warmed up first), SentencePiece included; target tokens count the "
            "EOS. Beam search uses the recipe's length penalty "
            f"(alpha {recipe.decode.alpha}) and max length ratio {recipe.decode.max_len_ratio}.",
            "",
            *table,
            "",
            "Decode time against source length (sentences of the train and test splits grouped "
            "by source words, each group translated alone, 4,000-token batches):",
            "",
            "| search | source words | sentences | mean source words | mean output tokens | "
            "ms / sentence | ms / source word |",
            "|---|---|---:|---:|---:|---:|---:|",
            *[
                f"| {r['search']} | {r['bucket']} | {r['sentences']} | {r['mean_src_words']} | "
                f"{r['mean_out_tokens']} | {r['ms_per_sentence']} | {r['ms_per_src_word']} |"
                for r in by_length
            ],
            "",
            "Growth exponent k in ms/sentence ~ (source words)^k, least squares on the logs: "
            + ", ".join(f"{name} **{k}**" for name, k in exponents.items())
            + " (1 = linear).",
            "",
            f"Command: `{command}`",
        ]
    )
    update_json(
        args.out.with_suffix(".json"),
        {
            "decode": {
                "run": str(paths.root),
                "rows": rows,
                "by_length": by_length,
                "growth_exponent": exponents,
            }
        },
    )
    write_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
