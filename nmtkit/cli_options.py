"""The command line's reusable argument and option types (`Annotated`), so that each command's
signature stays short and an option that several commands share is declared once.

Typer reads these annotations at run time: `Optional[...]` (not `X | None`) keeps them working
on Python 3.10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# ruff: noqa: UP045 - typer reads these annotations at runtime on Python 3.10

# ---------------------------------------------------------------------------- translate

ModelsOption = Annotated[
    list[Path],
    typer.Option(
        "--model",
        "-m",
        metavar="CKPT",
        help="Checkpoint, run directory (its best.pt) or recipe; repeat for an ensemble.",
        show_default=False,
    ),
]
InputOption = Annotated[
    Optional[Path],
    typer.Option("--input", "-i", help="Source text, one sentence per line (default stdin)."),
]
OutputOption = Annotated[
    Optional[Path], typer.Option("--output", "-o", help="Where to write (default stdout).")
]
BeamOption = Annotated[
    Optional[int],
    typer.Option("--beam", "-b", help="Beam size [default: the recipe's decode.beam_size]."),
]
GreedyOption = Annotated[bool, typer.Option("--greedy", help="Greedy search (fastest; no n-best).")]
BatchTokensOption = Annotated[
    Optional[int],
    typer.Option("--batch-tokens", help="Source tokens per batch, padding included."),
]
AlphaOption = Annotated[
    Optional[float], typer.Option("--alpha", help="GNMT length penalty exponent (0: none).")
]
MaxLenRatioOption = Annotated[
    Optional[float],
    typer.Option("--max-len-ratio", help="Longest output: ratio x source length + 5."),
]
MaxSrcTokensOption = Annotated[
    Optional[int],
    typer.Option("--max-src-tokens", help="Longer inputs are truncated (with a warning)."),
]
NbestOption = Annotated[
    int, typer.Option("--nbest", help="Hypotheses per line (tsv/jsonl; text prints the best).")
]
FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="text | tsv (text<TAB>score per n-best) | jsonl.")
]
AttentionOption = Annotated[
    bool, typer.Option("--attention", help="jsonl: add the best hypothesis's attention.")
]
DeviceOption = Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (the recipe's train.precision on a GPU, fp32 elsewhere) | fp32 | bf16 "
        "(autocast; faster on CPUs with AMX) | fp16 (CUDA).",
    ),
]
ProgressOption = Annotated[
    Optional[bool],
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr [default: on for a file input unless stdout is a pipe].",
        show_default=False,
    ),
]

# ----------------------------------------------------------------------------- evaluate

EvaluateRunArg = Annotated[
    Optional[Path],
    typer.Argument(
        metavar="[RUN_DIR_OR_RECIPE]",
        help="Translate this run's test split(s) with its best.pt and score them.",
        show_default=False,
    ),
]
HypOption = Annotated[
    Optional[str],
    typer.Option(
        "--hyp",
        metavar="[NAME=]FILE",
        help="Translations to score, one detokenized sentence per line; the baseline of the "
        "significance tests. Named NAME, or by the file's stem.",
        show_default=False,
    ),
]
RefOption = Annotated[
    Optional[Path],
    typer.Option("--ref", metavar="FILE", help="Reference translations.", show_default=False),
]
SrcOption = Annotated[
    Optional[Path],
    typer.Option("--src", metavar="FILE", help="Source sentences, for --by source."),
]
ByOption = Annotated[
    Optional[str],
    typer.Option(
        "--by",
        metavar="source|reference",
        help="Bucket sentences by source or reference length in words "
        "[default: source with --src, else reference].",
        show_default=False,
    ),
]
BucketsOption = Annotated[
    Optional[str],
    typer.Option(
        "--buckets",
        metavar="E1,E2,...",
        help="Increasing bucket edges in words: 10,20 gives ≤10, 11-20 and 21+ "
        "[default: 10,20,30,40,50, or the recipe's evaluate.buckets].",
        show_default=False,
    ),
]
JsonOption = Annotated[
    Optional[Path],
    typer.Option("--json", metavar="FILE", help="Write every number as JSON."),
]
PlotOption = Annotated[
    Optional[Path],
    typer.Option("--plot", metavar="FILE", help="Plot BLEU by length (.png, .svg, .pdf)."),
]
CompareOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--compare",
        metavar="NAME=FILE",
        help="Another system to score and test against --hyp (repeatable).",
        show_default=False,
    ),
]
EvaluateDeviceOption = Annotated[
    str, typer.Option("--device", help="With RUN_DIR: where to translate (auto|cpu|cuda).")
]
