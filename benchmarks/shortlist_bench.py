"""Vocabulary shortlists: decoding speed and BLEU against the full vocabulary, per setting.

    python benchmarks/shortlist_bench.py RUN_OR_CHECKPOINT SOURCE REFERENCE \
        [--settings 50:100 20:50 100:200] [--precisions fp32 bf16] [--out docs/benchmarks.md]
        [--name shortlist-multi30k|shortlist-demo]

Loads the model once (a checkpoint without a lexical table, from before tables were stored,
gets one learned from its run's prepared data), then for each precision translates SOURCE
with beam 5 and greedy in full vocabulary and at each shortlist setting `k:frequent`
(`--shortlist-k`, `--shortlist-frequent`), 8,000 source tokens per batch, timing the search
(a 64-line warm-up excluded; encoding and decoding included, as `decode_bench.py` does).
Reports sentences/s, BLEU (sacrebleu default) and its change against the full vocabulary of
the same precision, how many lines changed, and the mean size of a batch's shortlist. Results
go to the `--name` section of the Markdown file (with --out) and to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, shown_path, update_json, write_section  # noqa: E402

from nmtkit.checkpoint import Checkpoint  # noqa: E402
from nmtkit.data.manifest import PreparedData  # noqa: E402
from nmtkit.evaluate.scores import score_corpus  # noqa: E402
from nmtkit.translate import DecodeOptions, Translator, load_model, resolve_checkpoint  # noqa: E402

# the sections of docs/benchmarks.md this script writes (--name): one per corpus measured
SECTIONS = ("shortlist-multi30k", "shortlist-demo")
SEARCHES = {"beam 5": {"beam_size": 5}, "greedy": {"greedy": True}}


def with_table(path: Path, work: Path) -> Path:
    """`path`, or a copy with the lexical table learned from its run's prepared data."""
    checkpoint = Checkpoint.read(path)
    if checkpoint.lexical is not None:
        return path
    recipe = checkpoint.recipe(path)
    table = PreparedData.open(recipe.paths.data).lexical_table()
    copy = work / f"{path.stem}.lexical.pt"
    replace(checkpoint, lexical=table, training=None).write(copy)
    return copy


def shortlist_size(translator: Translator, lines: list[str], options: DecodeOptions) -> float:
    """Mean size of a batch's shortlist union, batches as `translate` cuts them."""
    from nmtkit.data.batching import make_batches

    assert translator.lexical is not None
    encoded = [ids for ids in translator.src_tokenizer.encode(lines) if ids]
    lengths = np.array([len(ids) for ids in encoded])
    batches = make_batches(
        lengths,
        np.zeros_like(lengths),
        batch_tokens=options.batch_tokens,
        rng=np.random.default_rng(0),
    )
    sizes = [
        len(
            translator.lexical.batch_shortlist(
                [encoded[i] for i in batch], options.shortlist_k, options.shortlist_frequent
            )[0]
        )
        for batch in batches
    ]
    return round(float(np.mean(sizes)), 1)


def measure(
    translator: Translator, lines: list[str], refs: list[str], options: DecodeOptions
) -> tuple[dict[str, Any], list[str]]:
    translator.translate(lines[:64], options)  # warm-up
    start = time.perf_counter()
    texts = [r.texts[0] for r in translator.translate(lines, options)]
    seconds = time.perf_counter() - start
    row = {
        "sent_per_s": round(len(lines) / seconds, 1),
        "bleu": round(score_corpus(texts, refs).bleu, 2),
    }
    return row, texts


def render(rows: list[dict[str, Any]], model: str, lines: int, vocab: int, command: str) -> str:
    out = [
        f"Model `{model}` (target vocabulary {vocab:,}), {lines:,} test sentences, 8,000 source "
        "tokens per batch, search timed in one process (warm-up excluded). `k:N` = "
        "`--shortlist-k k --shortlist-frequent N`; size = the mean number of target pieces "
        "a batch's output layer computes; changed = lines whose output differs from the full "
        f"vocabulary's at the same precision. {cpu_description()}, {torch.get_num_threads()} "
        f"threads; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| precision | search | vocabulary | size | sent/s | speed-up | BLEU | ΔBLEU | changed |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['precision']} | {r['search']} | {r['setting']} | {r['size']:,} | "
            f"{r['sent_per_s']:,} | {r['speedup']:.2f}x | {r['bleu']} | {r['delta_bleu']:+.2f} | "
            f"{r['changed']:,} |"
        )
    return "\n".join([*out, "", "```", command, "```"])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="run directory, checkpoint or recipe")
    parser.add_argument("source", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--settings", nargs="+", default=["50:100", "20:50", "100:200"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--lines", type=int, default=0, help="only the first N lines (0: all)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "shortlist")
    parser.add_argument("--out", type=Path, help="write a section of this Markdown file")
    parser.add_argument(
        "--name",
        default=SECTIONS[-1],
        choices=SECTIONS,
        help="the section's (and JSON key's) name",
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    path = with_table(resolve_checkpoint(args.model), args.work)
    lines = args.source.read_text(encoding="utf-8").splitlines()
    refs = args.reference.read_text(encoding="utf-8").splitlines()
    if args.lines:
        lines, refs = lines[: args.lines], refs[: args.lines]
    device = torch.device("cpu")
    member = load_model(path, device)
    rows = []
    vocab = member.tgt_tokenizer.vocab_size
    for precision in args.precisions:
        translator = Translator([member], device, precision)
        for search, choice in SEARCHES.items():
            base = translator.defaults.replace(
                alpha=0.0, batch_tokens=8000, shortlist=False, **choice
            )
            full, full_texts = measure(translator, lines, refs, base)
            rows.append(
                {
                    "precision": precision,
                    "search": search,
                    "setting": "full",
                    "size": vocab,
                    **full,
                    "speedup": 1.0,
                    "delta_bleu": 0.0,
                    "changed": 0,
                }
            )
            for setting in args.settings:
                k, frequent = map(int, setting.split(":"))
                options = base.replace(shortlist=True, shortlist_k=k, shortlist_frequent=frequent)
                row, texts = measure(translator, lines, refs, options)
                changed = sum(a != b for a, b in zip(texts, full_texts, strict=True))
                rows.append(
                    {
                        "precision": precision,
                        "search": search,
                        "setting": setting,
                        "size": shortlist_size(translator, lines, options),
                        **row,
                        "speedup": round(row["sent_per_s"] / full["sent_per_s"], 2),
                        "delta_bleu": round(row["bleu"] - full["bleu"], 2),
                        "changed": changed,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    if args.out:
        command = shown_command(
            "shortlist_bench.py", argv or sys.argv[1:], positional=["MODEL", "SOURCE", "REFERENCE"]
        )
        text = render(rows, shown_path(args.model, "MODEL"), len(lines), vocab, command)
        update_json(args.out.with_suffix(".json"), {args.name: rows})
        write_section(args.out, args.name, text)
    return rows


if __name__ == "__main__":
    main()
