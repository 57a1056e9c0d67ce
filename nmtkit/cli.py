"""The `nmtkit` command line. Each command parses its options and calls one library function.

Heavy modules (torch, datasets, sentencepiece) are imported inside the commands that need them,
so `nmtkit --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="nmtkit",
    help="Train recurrent encoder-decoder translation models with attention, from raw parallel "
    "text to BLEU by sentence length. Start with `nmtkit prepare recipes/demo.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

RecipeArg = Annotated[
    Path, typer.Argument(help="Recipe YAML file (see recipes/).", show_default=False)
]
SetOption = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer reads this annotation at runtime on Python 3.10
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a recipe key, value parsed as YAML (repeatable), "
        "e.g. `--set tokenizer.vocab_size=4000`.",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        from nmtkit import __version__

        typer.echo(f"nmtkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Recurrent encoder-decoder translation models with attention."""


@app.command()
def prepare(
    recipe: RecipeArg,
    set_: SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo every step even if the data is up to date.")
    ] = False,
) -> None:
    """Read, clean and tokenize a parallel corpus into binary shards for training.

    Reads `data.source` (synthetic, files, tsv, jsonl or hf), drops pairs by the `data.clean`
    rules (counting each), trains SentencePiece (`tokenizer`), and writes memory-mapped shards,
    the tokenizer model(s), the cleaned text and `manifest.json` to `RUN_DIR/data/`. Rerunning
    with unchanged inputs and settings does nothing.

    Examples:

    - `nmtkit prepare recipes/demo.yaml`
    - `nmtkit prepare recipes/demo.yaml --set data.source.synthetic.pairs=200000`
    - `nmtkit prepare my.yaml --set tokenizer.vocab_size=16000 --force`
    """
    from nmtkit.console import user_errors

    with user_errors():
        from nmtkit.data.prepare import prepare as run_prepare
        from nmtkit.recipe import load_recipe

        run_prepare(load_recipe(recipe, set_ or []), force=force)


@app.command()
def train(
    recipe: RecipeArg,
    set_: SetOption = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start over, deleting the run's checkpoints and log."),
    ] = False,
) -> None:
    """Train the recipe's model on its prepared data, on a GPU when there is one.

    Continues from `RUN_DIR/checkpoints/last.pt` when it exists (exactly where it stopped:
    model, optimizer, schedule, random states and data position); stop criteria may be
    changed for the continuation. Validates every `train.valid_every` updates (loss,
    perplexity, greedy BLEU/chrF), keeps `last.pt`, `best.pt` and the best
    `train.keep_checkpoints`, and logs to `RUN_DIR/logs/metrics.jsonl`. Ctrl-C (SIGINT) or
    SIGTERM saves `last.pt` and exits.

    Examples:

    - `nmtkit train recipes/demo.yaml`
    - `nmtkit train recipes/demo.yaml --set train.max_steps=40`   (continue to step 40)
    - `nmtkit train recipes/demo.yaml --set model.attention=bahdanau --restart`
    """
    from nmtkit.console import user_errors

    with user_errors():
        from nmtkit.recipe import load_recipe
        from nmtkit.train.loop import train as run_train

        result = run_train(load_recipe(recipe, set_ or []), restart=restart)
    if result.signal is not None:
        raise typer.Exit(code=128 + result.signal)


def main() -> None:
    """Console-script entry point."""
    app()
