"""The `nmtkit` command line. Each command parses its options and calls one library function.

Heavy modules (torch, datasets, sentencepiece) are imported inside the commands that need them,
so `nmtkit --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nmtkit import cli_options as opt
from nmtkit.console import info, user_errors

app = typer.Typer(
    name="nmtkit",
    help="Train recurrent encoder-decoder translation models with attention, from raw parallel "
    "text to BLEU by sentence length. Start with `nmtkit prepare demo` (a built-in recipe; "
    "`nmtkit recipes` lists them).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    recipe: opt.RecipeArg,
    set_: opt.SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo every step even if the data is up to date.")
    ] = False,
) -> None:
    """Read, clean and tokenize a parallel corpus into binary shards for training.

    Reads `data.source` (synthetic, files, tsv, jsonl or hf), drops pairs by the `data.clean`
    rules (counting each), trains SentencePiece (`tokenizer`), and writes memory-mapped shards,
    the tokenizer model(s), the cleaned text and `manifest.json` to `RUN_DIR/data/` (or the
    recipe's `data_dir`). Rerunning with unchanged inputs and settings does nothing; a changed
    input file or `data`/`tokenizer` setting redoes it all.

    Examples:

    - `nmtkit prepare demo`   (a built-in recipe, into `runs/demo/`; a clone has it as
      `recipes/demo.yaml`, and a file at the path given always wins over a name)
    - `nmtkit prepare demo --set data.source.synthetic.pairs=200000`
    - `nmtkit prepare my.yaml --set tokenizer.vocab_size=16000 --force`

    With `train.init_from: CKPT` (fine-tuning) the corpus is encoded with that checkpoint's
    SentencePiece model(s) instead of new ones, so the model keeps its vocabulary.
    """
    with user_errors():
        from nmtkit.checkpoint import Checkpoint
        from nmtkit.data.prepare import prepare as run_prepare
        from nmtkit.recipe import load_recipe

        loaded = load_recipe(recipe, set_ or [])
        init_from = loaded.train.init_from
        given = None if init_from is None else Checkpoint.read(init_from).tokenizer
        run_prepare(loaded, force=force, tokenizers=given)


@app.command()
def train(
    recipe: opt.RecipeArg,
    set_: opt.SetOption = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start over, deleting the run's checkpoints and log."),
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            metavar="N",
            help="Train on N processes on this machine with DistributedDataParallel: one per "
            "GPU, or CPU processes (gloo). Same as `torchrun --standalone --nproc-per-node N "
            "-m nmtkit train ...`.",
        ),
    ] = 1,
) -> None:
    """Train the recipe's model on its prepared data, on a GPU when there is one.

    Continues from `RUN_DIR/checkpoints/last.pt` when it exists (exactly where it stopped:
    model, optimizer, schedule, random states and data position). A run that stopped goes
    further only when the limit that stopped it is raised (`--set` on `train.max_steps`,
    `max_epochs`, `max_time` or `early_stopping.patience`): `max_time` counts the training
    time of every resume, so a demo run stopped at its `8m` needs a larger one. Validates every
    `train.valid_every` updates (loss, perplexity, greedy BLEU/chrF), keeps `last.pt`,
    `best.pt` and the best `train.keep_checkpoints` as `step-N.pt` (with
    `train.average_last: N`, the last N validated ones are averaged into `avg.pt` at the end),
    and logs to `RUN_DIR/logs/metrics.jsonl`, mirrored as TensorBoard events in
    `RUN_DIR/tensorboard/` (`tensorboard --logdir RUN_DIR/tensorboard`; with the
    `nmtkit[tensorboard]` extra, off with `train.tensorboard=false`); when it ends, the curves
    are drawn into `RUN_DIR/reports/training.png` (with the `nmtkit[plot]` extra). Ctrl-C
    (SIGINT) or SIGTERM saves `last.pt` and exits; after any kill, even SIGKILL in a checkpoint
    write, the same command resumes from the last complete checkpoint. A second `train` on the
    same run is refused while this one holds `RUN_DIR/.lock`.

    Under torchrun, or with `--nproc N`, each process trains on its share of every global
    batch (`train.batch_tokens` is the global budget), so N processes make the same updates as
    one; a run may be resumed with another number of processes.

    Examples:

    - `nmtkit train demo`
    - `nmtkit train demo --nproc 4`   (4 GPUs of this machine)
    - `nmtkit train demo --set train.max_time=16m`   (continue a demo run that stopped at its
      `max_time: 8m`, for 8 minutes more)
    - `nmtkit train demo --set model.attention=bahdanau --restart`
    """
    with user_errors():
        from nmtkit.recipe import load_recipe
        from nmtkit.train.loop import train as run_train

        loaded = load_recipe(recipe, set_ or [])  # recipe errors are reported once, here
        if nproc > 1:
            from nmtkit.train.distributed import launch

            args = [str(recipe), *(f"--set={item}" for item in set_ or [])]
            raise typer.Exit(code=launch(nproc, args + ["--restart"] * restart, loaded))
        result = run_train(loaded, restart=restart)
    if result.signal is not None:
        raise typer.Exit(code=128 + result.signal)


@app.command()
def evaluate(
    run: opt.EvaluateRunArg = None,
    hyp: opt.HypOption = None,
    ref: opt.RefOption = None,
    src: opt.SrcOption = None,
    by: opt.ByOption = None,
    buckets: opt.BucketsOption = None,
    json_path: opt.JsonOption = None,
    plot: opt.PlotOption = None,
    compare: opt.CompareOption = None,
    device: opt.EvaluateDeviceOption = "auto",
) -> None:
    """Score translations with BLEU, chrF and TER (sacrebleu), overall and by sentence length.

    Prints corpus scores with 95% bootstrap intervals, then BLEU and chrF per length bucket
    with sentence counts, and the sacrebleu signatures. With `--compare`, every system is
    tested against `--hyp` by paired bootstrap resampling, overall and per bucket (p-values,
    `*` for p < 0.05). Resampling is seeded (`SACREBLEU_SEED`, default 12345).

    With a run directory (or its recipe) instead of files: translate the run's test split(s)
    with `best.pt`, and with `checkpoints/avg.pt` too when the run has one (`train.average_last`
    or `nmtkit average`), by the recipe's `decode:` settings into
    `RUN_DIR/translations/<split>.<tgt>` (and `<split>.avg.<tgt>`); score them by length as the
    recipe's `evaluate:` says (`--by` and `--buckets` override it), `avg.pt` as a second system
    tested against `best.pt`; and write `RUN_DIR/reports/<split>.json` and `<split>.png`, and
    the training curves `RUN_DIR/reports/training.png`. The plots need the `nmtkit[plot]`
    extra (`pip install "nmtkit[plot]"`); without it a run's are left out, with a note.

    Examples:

    - `nmtkit evaluate runs/demo`   (or `nmtkit evaluate demo`, the recipe naming that run)
    - `nmtkit evaluate --hyp out.de --ref test.de`   (buckets by reference length)
    - `nmtkit evaluate --hyp out.de --ref test.de --src test.en --plot bleu.png`
    - `nmtkit evaluate --hyp luong=a.de --compare bahdanau=b.de --ref test.de --src test.en
      --buckets 10,20,30,40,50,60 --json report.json`
    """
    with user_errors():
        from nmtkit.evaluate.run import evaluate_command

        evaluate_command(
            run,
            hyp,
            ref,
            src,
            compare=compare,
            by=by,
            buckets=buckets,
            json_path=json_path,
            plot_path=plot,
            device=device,
        )


@app.command()
def translate(
    model: opt.ModelsOption,
    input_path: opt.InputOption = None,
    output_path: opt.OutputOption = None,
    beam: opt.BeamOption = None,
    greedy: opt.GreedyOption = False,
    batch_tokens: opt.BatchTokensOption = None,
    alpha: opt.AlphaOption = None,
    max_len_ratio: opt.MaxLenRatioOption = None,
    max_src_tokens: opt.MaxSrcTokensOption = None,
    nbest: opt.NbestOption = 1,
    fmt: opt.FormatOption = "text",
    attention: opt.AttentionOption = False,
    shortlist: opt.ShortlistOption = None,
    shortlist_k: opt.ShortlistKOption = None,
    shortlist_frequent: opt.ShortlistFrequentOption = None,
    device: opt.DeviceOption = "auto",
    precision: opt.PrecisionOption = "auto",
    progress: opt.ProgressOption = None,
) -> None:
    """Translate raw text, one sentence per line: exactly one output line per input line.

    Reads a file or stdin and writes a file or stdout, streaming (bounded memory on any
    size). Batched beam search with a GNMT length penalty; defaults come from the model's
    recipe (`decode:`). An empty input line gives an empty output line; a line longer than
    `--max-src-tokens` pieces is truncated with a warning. A file output is written as
    `NAME.PID.partial` and renamed when complete. Several `--model`s decode as an ensemble, by
    the mean of their log-probabilities (they must share the tokenizers).

    Examples:

    - `nmtkit translate -m runs/demo -i test.en -o test.de`
    - `echo "The old man sees the dog." | nmtkit translate -m runs/demo --greedy`   (raw text
      as it comes: cased, punctuation attached)
    - `nmtkit translate -m runs/demo -i test.en -f tsv --nbest 5`   (per line: each
      hypothesis and its score, tab-separated)
    - `nmtkit translate -m runs/demo -i test.en --format jsonl --nbest 5 --attention`
    - `nmtkit translate -m runs/a -m runs/b -i test.en`   (ensemble)
    - `nmtkit translate -m runs/demo -i test.en --no-shortlist`   (whole vocabulary; a shortlist
      is the default where the checkpoint has a lexical table and 2,000+ target pieces)
    """
    with user_errors():
        from nmtkit.translate import Translator
        from nmtkit.translate_files import translate_file

        translator = Translator.load(model, device=device, precision=precision)
        options = translator.defaults.replace(
            beam_size=beam,
            greedy=greedy,
            batch_tokens=batch_tokens,
            alpha=alpha,
            max_len_ratio=max_len_ratio,
            max_src_tokens=max_src_tokens,
            nbest=nbest,
            attention=attention,
            shortlist=shortlist,
            shortlist_k=shortlist_k,
            shortlist_frequent=shortlist_frequent,
        )
        try:
            translate_file(
                translator,
                options,
                input_path=None if input_path == Path("-") else input_path,
                output_path=None if output_path == Path("-") else output_path,
                fmt=fmt,
                show_progress=progress,
            )
        except BrokenPipeError:  # `... | head`: the reader has gone; not an error
            raise typer.Exit(code=0) from None


@app.command()
def average(
    checkpoints: Annotated[
        list[Path], typer.Argument(help="Checkpoints of one model (two or more).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The averaged checkpoint.")],
) -> None:
    """Average the weights of several checkpoints of one model into one.

    Averaging the last few checkpoints of a run often gains a little BLEU for free. The
    result holds the averaged weights with the first checkpoint's recipe and tokenizers:
    `nmtkit translate` can use it; training cannot resume from it. Named
    `RUN_DIR/checkpoints/avg.pt`, it is what `nmtkit evaluate RUN_DIR` scores beside `best.pt`.

    Examples:

    - `nmtkit average runs/demo/checkpoints/step-*.pt -o runs/demo/checkpoints/avg.pt`
      (the kept step files: the run's best `train.keep_checkpoints`)
    """
    with user_errors():
        from nmtkit.checkpoint import average_checkpoints

        average_checkpoints(checkpoints, output)
        info(f"averaged {len(checkpoints)} checkpoints into {output}")


@app.command()
def score(
    model: opt.ModelsOption,
    src: Annotated[
        Path, typer.Option("--src", metavar="FILE", help="Source sentences, one per line.")
    ],
    tgt: Annotated[
        Path,
        typer.Option("--tgt", metavar="FILE", help="Their translations, line i for source i."),
    ],
    output_path: opt.OutputOption = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="tsv (log_prob, per_token and tokens, tab-separated) | jsonl (the same and "
            "score, as JSON).",
        ),
    ] = "tsv",
    pieces: Annotated[
        bool, typer.Option("--pieces", help="jsonl: add each piece and its log-probability.")
    ] = False,
    batch_tokens: opt.BatchTokensOption = None,
    max_src_tokens: opt.MaxSrcTokensOption = None,
    device: opt.DeviceOption = "auto",
    precision: opt.PrecisionOption = "auto",
) -> None:
    """Score given translations with a model (forced decoding): one line per sentence pair.

    Each line gives the model's log-probability of the translation: the sum over its
    SentencePiece pieces and the end of sentence (natural log), the mean per piece and the
    number of pieces (both counting the end of sentence); jsonl adds `score`, the sum over the
    GNMT length penalty of the recipe's `decode.alpha` (what beam search ranks by). For a
    translation made by `nmtkit translate` these are the numbers beam search reported, as
    long as SentencePiece splits the text into the pieces the model produced (it almost always
    does) and no shortlist restricted the search (`--no-shortlist`). Several `--model`s score
    as an ensemble (the mean of their log-probabilities). Use it to filter a corpus or rerank
    n-best lists. `--src` and `--tgt` must have the same number of lines.

    Examples:

    - `nmtkit score -m runs/demo --src test.en --tgt test.de`
    - `nmtkit score -m runs/demo --src test.en --tgt test.de -f jsonl --pieces -o scores.jsonl`
    """
    with user_errors():
        from nmtkit.score import Scorer, score_files

        scorer = Scorer.load(model, device=device, precision=precision)
        try:
            score_files(
                scorer,
                src_path=src,
                tgt_path=tgt,
                output_path=None if output_path == Path("-") else output_path,
                fmt=fmt,
                pieces=pieces,
                batch_tokens=batch_tokens,
                max_src_tokens=max_src_tokens,
            )
        except BrokenPipeError:
            raise typer.Exit(code=0) from None


@app.command()
def serve(
    model: opt.ServeModelsOption,
    host: opt.HostOption = "127.0.0.1",
    port: opt.PortOption = 8080,
    device: opt.DeviceOption = "auto",
    precision: opt.PrecisionOption = "auto",
    threads: opt.ThreadsOption = 0,
    max_batch_tokens: opt.MaxBatchTokensOption = 6000,
    max_wait_ms: opt.MaxWaitOption = 5.0,
    max_lines: opt.MaxLinesOption = 64,
    max_chars: opt.MaxCharsOption = 2000,
    max_body_bytes: opt.MaxBodyOption = 1 << 20,
    max_queue: opt.MaxQueueOption = 256,
    timeout: opt.TimeoutOption = 60.0,
    max_work: opt.MaxWorkOption = 8192,
    read_timeout: opt.ReadTimeoutOption = 10.0,
    keep_alive: opt.KeepAliveOption = 5.0,
    limit_concurrency: opt.LimitConcurrencyOption = 512,
    shutdown_timeout: opt.ShutdownTimeoutOption = 10.0,
    api_key: opt.ApiKeyOption = None,
    cors_origin: opt.CorsOption = None,
) -> None:
    """Serve trained models over HTTP: a JSON API, Prometheus metrics and a page at `/`.

    `POST /v1/translate` with `{"text": ["...", ...], "beam": 5, "nbest": 1, "attention":
    false}` gives one result per line, in order, identical to `nmtkit translate --format
    jsonl`. Requests waiting at the same time are translated in one batched search (up to
    `--max-batch-tokens`, waiting at most `--max-wait-ms`). What one request may cost is
    bounded (`--max-body-bytes`, `--max-lines`, `--max-chars`, `--max-work`, `--read-timeout`,
    `--timeout`), and a request that cannot be served fails alone: the model goes on serving.
    Binds 127.0.0.1 unless `--host` says otherwise; SIGTERM or Ctrl-C finishes the requests in
    flight (for at most `--shutdown-timeout` seconds) and exits 0. Needs the `nmtkit[serve]`
    extra (`pip install "nmtkit[serve]"`).

    Examples:

    - `nmtkit serve -m runs/demo`   (then open http://127.0.0.1:8080/)
    - `nmtkit serve -m en-de=runs/demo -m runs/other --port 9000`   (with `NMTKIT_API_KEY`
      set in the environment, requests need `Authorization: Bearer KEY`)
    """
    with user_errors():
        from nmtkit.extras import require_extra

        require_extra("serve", "nmtkit serve")
        from nmtkit.serve.app import serve as run_server
        from nmtkit.serve.schemas import ServeSettings

        settings = ServeSettings(
            max_lines=max_lines,
            max_chars=max_chars,
            max_body_bytes=max_body_bytes,
            max_batch_tokens=max_batch_tokens,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            timeout_s=timeout,
            max_work=max_work,
            read_timeout_s=read_timeout,
            keep_alive_s=keep_alive,
            limit_concurrency=limit_concurrency,
            shutdown_timeout_s=shutdown_timeout,
            api_key=api_key or None,
            cors_origins=tuple(cors_origin or ()),
        )
        run_server(
            model,
            settings,
            host=host,
            port=port,
            device=device,
            precision=precision,
            threads=threads,
        )


recipes_app = typer.Typer(rich_markup_mode="markdown")
app.add_typer(recipes_app, name="recipes")


@recipes_app.callback(invoke_without_command=True)
def recipes(ctx: typer.Context) -> None:
    """List the built-in recipes, one line each; `nmtkit recipes show NAME` prints one.

    Every command that takes a recipe file takes a built-in recipe's name too (a file of that
    name, if there is one, wins). Its run goes where the recipe says (`run_dir`, by default
    `runs/<name>`) under the current directory, as for a recipe file.

    Examples:

    - `nmtkit recipes`
    - `nmtkit prepare demo && nmtkit train demo`
    - `nmtkit recipes show demo > my.yaml`   (a copy to edit; then `nmtkit prepare my.yaml`)
    """
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        import shutil

        from nmtkit.builtin_recipes import listing

        for line in listing(shutil.get_terminal_size((100, 24)).columns):
            typer.echo(line)


@recipes_app.command("show")
def show_recipe(
    name: Annotated[str, typer.Argument(help="A built-in recipe (`nmtkit recipes` lists them).")],
) -> None:
    """Print a built-in recipe's YAML as it is, comments included, to copy and edit.

    Example: `nmtkit recipes show multi30k-cpu > my.yaml`
    """
    with user_errors():
        from nmtkit.builtin_recipes import builtin_recipe

        typer.echo(builtin_recipe(name).read_text(encoding="utf-8"), nl=False)


def main() -> None:
    """Console-script entry point."""
    app()
