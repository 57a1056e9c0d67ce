"""The command line's argument and option types (`Annotated`), so that signatures stay short."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from typer import Argument, Option

# ruff: noqa: UP045 - typer reads these annotations at run time: Optional, not X | None, on 3.10

RecipeArg = Annotated[
    str,
    Argument(
        metavar="RECIPE",
        help="Recipe YAML file, or a built-in recipe's name (`nmtkit recipes` lists them); a "
        "file wins.",
    ),
]
SetOption = Annotated[
    Optional[list[str]],
    Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a recipe key, value parsed as YAML (repeatable), "
        "e.g. `--set tokenizer.vocab_size=4000`.",
    ),
]
ModelsOption = Annotated[
    list[Path],
    Option(
        "--model",
        "-m",
        metavar="CKPT",
        help="Checkpoint, run directory (its checkpoints/best.pt, else last.pt) or recipe; "
        "repeat for an ensemble.",
    ),
]
InputOption = Annotated[
    Optional[Path],
    Option("--input", "-i", help="Source text, one sentence per line (default stdin)."),
]
OutputOption = Annotated[
    Optional[Path], Option("--output", "-o", help="Where to write (default stdout).")
]
BeamOption = Annotated[
    Optional[int],
    Option("--beam", "-b", help="Beam size [default: the recipe's decode.beam_size]."),
]
GreedyOption = Annotated[bool, Option("--greedy", help="Greedy search (fastest; no n-best).")]
BatchTokensOption = Annotated[
    Optional[int],
    Option(
        "--batch-tokens",
        help="Tokens per batch: sentences x the longest, padding included (default: the "
        "recipe's decode.batch_tokens value).",
    ),
]
AlphaOption = Annotated[
    Optional[float],
    Option(
        "--alpha",
        help="GNMT length penalty exponent, 0 for none (default: the recipe's decode.alpha).",
    ),
]
MaxLenRatioOption = Annotated[
    Optional[float],
    Option(
        "--max-len-ratio",
        help="Longest output in pieces: ratio x source pieces + 5 (default: the recipe's "
        "decode.max_len_ratio value).",
    ),
]
MaxSrcTokensOption = Annotated[
    Optional[int],
    Option(
        "--max-src-tokens",
        help="Sources longer than this many pieces (end of sentence included) are truncated, "
        "with a warning (default: the recipe's max_src_tokens, under decode).",
    ),
]
NbestOption = Annotated[
    int, Option("--nbest", help="Hypotheses per line (tsv/jsonl; text prints the best).")
]
FormatOption = Annotated[
    str,
    Option(
        "--format",
        "-f",
        help="text (the best translation) | tsv (each hypothesis and its score, tab-separated) "
        "| jsonl (n-best with scores and log-probabilities; the attention with --attention).",
    ),
]
AttentionOption = Annotated[
    bool, Option("--attention", help="jsonl: add the best hypothesis's attention.")
]
ShortlistOption = Annotated[
    Optional[bool],
    Option(
        "--shortlist/--no-shortlist",
        help="Restrict each sentence's output to a shortlist: the target pieces the "
        "checkpoint's lexical table predicts for its source pieces plus the most frequent "
        "ones (the output layer computes only the union over the batch): faster; scores "
        "become log-probabilities renormalised over the sentence's shortlist "
        "(`nmtkit score` always uses the whole vocabulary) [default: the recipe's "
        "decode.shortlist; auto, its default, uses one where the checkpoint has a table and "
        "the target vocabulary has at least 2,000 pieces].",
    ),
]
ShortlistKOption = Annotated[
    Optional[int], Option("--shortlist-k", help="Shortlist: candidates per source piece (1-100).")
]
ShortlistFrequentOption = Annotated[
    Optional[int],
    Option("--shortlist-frequent", help="Shortlist: most frequent target pieces always in it."),
]
DeviceOption = Annotated[
    str, Option("--device", help="auto (a CUDA GPU, else Apple MPS, else CPU) | cpu | cuda | mps.")
]
PrecisionOption = Annotated[
    str,
    Option(
        "--precision",
        help="auto (the recipe's decode.precision; if auto too, its train.precision on a GPU "
        "and fp32 elsewhere) | fp32 | bf16 (a bf16 copy of the model on a CPU, faster with "
        "AMX; autocast on a GPU) | fp16 (CUDA).",
    ),
]
ProgressOption = Annotated[
    Optional[bool],
    Option(
        "--progress/--no-progress",
        help="Progress bar on stderr [default: on for a file input unless stdout is a pipe].",
    ),
]
EvaluateRunArg = Annotated[
    Optional[Path],
    Argument(
        metavar="[RUN_DIR_OR_RECIPE]",
        help="Translate this run's test split(s) with its best.pt (and avg.pt, when it has "
        "one) and score them.",
    ),
]
HypOption = Annotated[
    Optional[str],
    Option(
        "--hyp",
        metavar="[NAME=]FILE",
        help="Translations to score, one detokenized sentence per line; the baseline of the "
        "significance tests. Named NAME, or by the file's stem.",
    ),
]
RefOption = Annotated[
    Optional[Path], Option("--ref", metavar="FILE", help="Reference translations.")
]
SrcOption = Annotated[
    Optional[Path], Option("--src", metavar="FILE", help="Source sentences, for --by source.")
]
ByOption = Annotated[
    Optional[str],
    Option(
        "--by",
        metavar="source|reference",
        help="Bucket sentences by source or reference length in words "
        "[default: source with --src, else reference; a run: the recipe's evaluate.by].",
    ),
]
BucketsOption = Annotated[
    Optional[str],
    Option(
        "--buckets",
        metavar="E1,E2,...",
        help="Increasing bucket edges in words: 10,20 gives ≤10, 11-20 and 21+ "
        "[default: 10,20,30,40,50, or the recipe's evaluate.buckets].",
    ),
]
JsonOption = Annotated[
    Optional[Path],
    Option(
        "--json",
        metavar="FILE",
        help="Write every number as JSON (with --hyp; a run writes RUN_DIR/reports/).",
    ),
]
PlotOption = Annotated[
    Optional[Path],
    Option(
        "--plot",
        metavar="FILE",
        help="Plot BLEU by length (.png, .svg, .pdf; with --hyp; a run writes RUN_DIR/reports/).",
    ),
]
CompareOption = Annotated[
    Optional[list[str]],
    Option(
        "--compare",
        metavar="NAME=FILE",
        help="Another system to score and test against --hyp (repeatable).",
    ),
]
EvaluateDeviceOption = Annotated[
    str, Option("--device", help="With RUN_DIR: where to translate (auto | cpu | cuda | mps).")
]

# -------------------------------------------------------------------------------- serve

ServeModelsOption = Annotated[
    list[str],
    Option(
        "--model",
        "-m",
        metavar="[NAME=]MODEL",
        help="Run directory, checkpoint or recipe to serve, named NAME (default: the run's "
        "name); repeat for several. The first is the default model.",
    ),
]
HostOption = Annotated[
    str, Option("--host", help="Address to bind; anything but 127.0.0.1 is reachable by others.")
]
PortOption = Annotated[int, Option("--port", min=0, max=65535, help="Port to listen on.")]
MaxBatchTokensOption = Annotated[
    int,
    Option("--max-batch-tokens", min=1, help="Source tokens batched into one search."),
]
MaxWaitOption = Annotated[
    float, Option("--max-wait-ms", min=0, help="How long a request waits for others to batch.")
]
MaxLinesOption = Annotated[int, Option("--max-lines", min=1, help="Lines per request (413).")]
MaxCharsOption = Annotated[int, Option("--max-chars", min=1, help="Characters per line (413).")]
MaxBodyOption = Annotated[int, Option("--max-body-bytes", min=1, help="Request body size (413).")]
MaxQueueOption = Annotated[
    int, Option("--max-queue", min=1, help="Waiting requests per model before 503.")
]
TimeoutOption = Annotated[float, Option("--timeout", min=0.001, help="Seconds per request (504).")]
MaxWorkOption = Annotated[
    int,
    Option(
        "--max-work",
        min=1,
        help="Search work per request, lines x beam x nbest (413); greedy counts beam 1.",
    ),
]
ReadTimeoutOption = Annotated[
    float,
    Option(
        "--read-timeout",
        min=0.001,
        help="Seconds a client has to send a request's headers, and then its body (408).",
    ),
]
KeepAliveOption = Annotated[
    float, Option("--keep-alive", min=0, help="Seconds an idle connection is kept open.")
]
LimitConcurrencyOption = Annotated[
    int,
    Option(
        "--limit-concurrency",
        min=1,
        help="Open connections and requests in progress before new ones get 503.",
    ),
]
ShutdownTimeoutOption = Annotated[
    float,
    Option(
        "--shutdown-timeout",
        min=0,
        help="Seconds SIGTERM waits for requests in flight before cancelling them.",
    ),
]
ApiKeyOption = Annotated[
    Optional[str],
    Option(
        "--api-key",
        envvar="NMTKIT_API_KEY",
        help="Require `Authorization: Bearer KEY` on everything but /health and the page "
        "(/v1/*, /metrics, /docs, /openapi.json, /ready's model names). Prefer the "
        "environment variable: a command line is visible to `ps`.",
    ),
]
CorsOption = Annotated[
    Optional[list[str]],
    Option("--cors-origin", metavar="ORIGIN", help="Allow browser calls from ORIGIN (repeatable)."),
]
ThreadsOption = Annotated[
    int,
    Option(
        "--threads",
        min=0,
        help="Torch threads for the search (0: the cores but one, leaving one for HTTP, unless "
        "OMP_NUM_THREADS is set).",
    ),
]
