"""Prepare throughput and peak memory on the built-in corpus at several sizes.

    python benchmarks/prepare_bench.py --pairs 200000 1000000 --out docs/benchmarks.md

Each size runs `prepare` in a fresh process (so peak RSS is that run's own), with the demo
recipe's tokenizer settings and the synthetic source at N training pairs. Results go to the
`prepare` section of the Markdown file (between its markers) and to `<out>.json` beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

SECTION = "prepare"


def run_one(pairs: int, run_dir: Path) -> dict[str, float]:
    """Prepare `pairs` synthetic pairs in this process; report time and peak RSS."""
    from nmtkit.data.prepare import prepare
    from nmtkit.recipe import load_recipe

    recipe = load_recipe(
        REPO / "recipes" / "demo.yaml",
        [f"run_dir={run_dir}", f"data.source.synthetic.pairs={pairs}"],
    )
    started = time.perf_counter()
    manifest = prepare(recipe, force=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "pairs": pairs,
        "kept": manifest["clean"]["train"]["kept"],
        "seconds": round(seconds, 1),
        "pairs_per_s": round(pairs / seconds),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def generator_seconds(pairs: int) -> float:
    """Seconds to generate `pairs` training pairs of the built-in corpus (no prepare)."""
    from nmtkit.data.synthetic import iter_synthetic

    started = time.perf_counter()
    for _ in iter_synthetic("train", pairs=pairs, valid=1000, test=2000, seed=1):
        pass
    return round(time.perf_counter() - started, 1)


def measure(pairs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="nmtkit-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(pairs), "--run-dir", tmp],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def render(rows: list[dict[str, float]], generator: float, command: str) -> str:
    from nmtkit.recipe import load_recipe

    tok = load_recipe(REPO / "recipes" / "demo.yaml").tokenizer
    tokenizer = (
        f"{tok.type} {tok.vocab_size:,} {'joint' if tok.joint else 'separate'}, "
        f"SentencePiece sample {tok.input_sentence_size:,} sentences"
    )
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {cpu_description()}, Python {platform.python_version()}; measured "
        f"{time.strftime('%Y-%m-%d')}.  ",
        f"Each size runs in a fresh process (`--force`, demo recipe tokenizer: {tokenizer}). "
        "Time covers generation, cleaning, SentencePiece training and encoding of "
        "train + valid + test.",
        "",
        "| train pairs | kept | wall time (s) | pairs/s | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['pairs']:,} | {r['kept']:,} | {r['seconds']} | {r['pairs_per_s']:,} "
        f"| {r['peak_rss_mib']} |"
        for r in rows
    ]
    if len(rows) >= 2:
        ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
        lines += [
            "",
            f"Peak-memory ratio {rows[-1]['pairs']:,} / {rows[0]['pairs']:,} pairs: "
            f"**{ratio:.2f}** (memory stays flat: text streams to disk, SentencePiece "
            "samples a bounded number of sentences, shards are written chunk by chunk).",
        ]
    lines += [
        "",
        f"The generator alone: 100,000 training pairs of the built-in corpus in {generator} s "
        f"({100_000 / generator:,.0f} pairs/s, single-threaded).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.run_dir)))
        return
    rows = []
    for pairs in args.pairs:
        rows.append(measure(pairs))
        print(json.dumps(rows[-1]), flush=True)
    generator = generator_seconds(100_000)
    command = shown_command("prepare_bench.py", ["--pairs", *map(str, args.pairs)])
    update_json(
        args.out.with_suffix(".json"),
        {"prepare": rows, "synthetic_generator_100k_seconds": generator},
    )
    write_section(args.out, SECTION, render(rows, generator, command))


if __name__ == "__main__":
    main()
