"""Before / after: decoding speed and output of this checkout against an earlier commit.

    python benchmarks/ab_decode.py --before 3952d83 --run runs/demo --rounds 3

Checks the `--before` revision out into a temporary git worktree, then translates the first
`--lines` lines of the run's test source with the run's best checkpoint, greedy and beam 5
(`--batch-tokens` source tokens per batch), in a fresh process per checkout, alternating
(before, after, before, after, ...) so that a drift in the machine's speed hits both. Prints
sentences/s per run, the median per checkout, and whether both gave the same translations
(a hash of the output). The child imports only the checkout under test and takes whichever
Python API that checkout has (`Translator.load` or the older `load_translator`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from worktree import revision_checkout  # noqa: E402

CHILD = """
import hashlib, sys, time
sys.path.insert(0, {code!r})
from pathlib import Path
search = {search!r}
import nmtkit.translate as api
if hasattr(api.Translator, "load"):
    translator = api.Translator.load(Path({run!r}), device="cpu")
    options = translator.defaults.replace(batch_tokens={batch_tokens}, **search)
else:  # before the public API: load_translator and DecodeOptions.from_recipe
    translator = api.load_translator([Path({run!r})], device="cpu")
    options = api.DecodeOptions.from_recipe(
        translator.recipe.decode, batch_tokens={batch_tokens}, **search
    )
lines = Path({source!r}).read_text(encoding="utf-8").splitlines()[: {lines}]
list(translator.translate(lines[:64], options))  # warm-up: allocator, threads
started = time.perf_counter()
results = list(translator.translate(lines, options))
seconds = time.perf_counter() - started
digest = hashlib.sha256("\\n".join(r.texts[0] for r in results).encode()).hexdigest()[:12]
print(round(len(lines) / seconds, 1), digest)
"""

SEARCHES = {"greedy": {"greedy": True}, "beam5": {"beam_size": 5}}


def measure(code: Path, search: dict, source: Path, args: argparse.Namespace) -> tuple[float, str]:
    script = CHILD.format(
        code=str(code),
        search=search,
        run=str(args.run.resolve()),
        source=str(source),
        lines=args.lines,
        batch_tokens=args.batch_tokens,
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=code
    )
    rate, digest = done.stdout.strip().splitlines()[-1].split()
    return float(rate), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "demo")
    parser.add_argument("--source", type=Path, help="default: the run's data/text/test.<src>")
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--batch-tokens", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    source = args.source or next((args.run / "data" / "text").glob("test.*"))
    with revision_checkout(args.before) as before:
        for name, search in SEARCHES.items():
            rates: dict[str, list[float]] = {"before": [], "after": []}
            digests: dict[str, set[str]] = {"before": set(), "after": set()}
            for _ in range(args.rounds):
                for side, code in (("before", before), ("after", REPO)):
                    rate, digest = measure(code, search, source.resolve(), args)
                    rates[side].append(rate)
                    digests[side].add(digest)
                    print(f"{side:6s} {name}: {rate:,.1f} sent/s  output {digest}")
            medians = {side: statistics.median(r) for side, r in rates.items()}
            same = "same output" if digests["before"] == digests["after"] else "OUTPUT DIFFERS"
            gain = 100 * (medians["after"] / medians["before"] - 1)
            print(
                f"{name}: median before {medians['before']:,.1f}, after "
                f"{medians['after']:,.1f} sent/s ({gain:+.1f}%), {same}"
            )


if __name__ == "__main__":
    main()
