"""Translate raw text with a trained model or an ensemble: lines in, as many lines out, in order.

    translator = load_translator([Path("runs/demo")], device="auto")
    for result in translator.translate(lines, DecodeOptions(beam_size=5)):
        print(result.texts[0])

The input is read as a stream, in windows of `WINDOW_LINES` lines: each window is
SentencePiece-encoded, sorted by length, cut into batches of at most `batch_tokens` source
tokens (padding included), decoded, and given back in input order, so memory stays bounded on
any input size. An empty (or whitespace-only) line gives an empty translation without running
the model; a line longer than `max_src_tokens` pieces is truncated, with a warning.

A checkpoint is all this needs: it holds the recipe (model shape, decoding defaults) and both
SentencePiece models (see `train/checkpoint.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmtkit.data.batching import make_batches, pad
from nmtkit.data.tokenizer import EOS_ID, Tokenizer
from nmtkit.device import autocast_for, pick_device
from nmtkit.errors import Interrupts, UserError
from nmtkit.models import Seq2Seq, build_model
from nmtkit.recipe import MAX_LEN_RATIO, DecodeConfig, Recipe, load_recipe, parse_recipe
from nmtkit.search.beam import beam_search
from nmtkit.search.greedy import greedy_hypotheses
from nmtkit.search.hypothesis import Hypothesis
from nmtkit.train.checkpoint import load_checkpoint

WINDOW_LINES = 4096  # lines sorted together; bounds memory and the reordering delay


@dataclass(frozen=True)
class DecodeOptions:
    """How to search; `from_recipe` takes the defaults from a recipe's `decode` section."""

    beam_size: int = 5
    alpha: float = 1.0
    max_len_ratio: float = 2.0
    batch_tokens: int = 8000
    max_src_tokens: int = 400
    nbest: int = 1
    greedy: bool = False
    attention: bool = False

    @classmethod
    def from_recipe(cls, cfg: DecodeConfig, **overrides: Any) -> DecodeOptions:
        options = cls(
            beam_size=cfg.beam_size,
            alpha=cfg.alpha,
            max_len_ratio=cfg.max_len_ratio,
            batch_tokens=cfg.batch_tokens,
            max_src_tokens=cfg.max_src_tokens,
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        """Option combinations that cannot work, as UserErrors naming the option."""
        if self.beam_size < 1 or self.batch_tokens < 1:
            raise UserError("--beam and --batch-tokens must be at least 1")
        if not 0 < self.max_len_ratio <= MAX_LEN_RATIO:  # also refuses nan
            raise UserError(f"--max-len-ratio must be above 0 and at most {MAX_LEN_RATIO:g}")
        if self.max_src_tokens < 2:
            raise UserError("--max-src-tokens must be at least 2 (one piece and the EOS)")
        if self.greedy and self.nbest > 1:
            raise UserError("--nbest needs beam search; drop --greedy")
        if not 1 <= self.nbest <= self.beam_size:
            raise UserError(f"--nbest {self.nbest} must be between 1 and --beam {self.beam_size}")


@dataclass(frozen=True)
class Translation:
    """The result for one input line."""

    line: int  # 1-based input line number
    source: str
    texts: list[str]  # detokenized hypotheses, best first (one empty string for an empty line)
    hyps: list[Hypothesis]  # the same hypotheses as ids and scores (empty for an empty line)
    src_pieces: list[str]  # with attention: source pieces the model saw, EOS excluded
    tgt_pieces: list[str]  # with attention: pieces of the best hypothesis, EOS excluded
    truncated: bool = False


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file; a run directory (or a recipe) means its checkpoints/best.pt."""
    path = Path(path)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        path = load_recipe(path).run_path
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f"model {path} does not exist (give a checkpoint, a run dir or a recipe)")
    candidates = [path / "checkpoints" / "best.pt", path / "best.pt"]
    fallbacks = [path / "checkpoints" / "last.pt", path / "last.pt"]
    for candidate in candidates + fallbacks:
        if candidate.is_file():
            return candidate
    raise UserError(
        f"no checkpoint in {path}: looked for checkpoints/best.pt and last.pt; "
        "has the run been trained (`nmtkit train`)?"
    )


@dataclass
class LoadedModel:
    path: Path
    model: Seq2Seq
    recipe: Recipe
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer


def load_model(path: Path, device: torch.device) -> LoadedModel:
    """Build the model a checkpoint describes and load its weights, in eval mode."""
    payload = load_checkpoint(path, map_location="cpu")
    try:
        recipe = parse_recipe(payload["recipe"], f"the recipe stored in {path}")
        tok = payload["tokenizer"]
        src_tok = Tokenizer(tok["src"])
        tgt_tok = src_tok if tok["joint"] else Tokenizer(tok["tgt"])
        model = build_model(recipe.model, src_tok.vocab_size, tgt_tok.vocab_size)
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UserError(
            f"{path} is an nmtkit checkpoint but its contents do not fit together "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from None
    model.to(device).eval()
    return LoadedModel(path, model, recipe, src_tok, tgt_tok)


class Translator:
    """One model or an ensemble (same tokenizers), ready to translate lines."""

    def __init__(
        self, members: list[LoadedModel], device: torch.device, precision: str = "auto"
    ) -> None:
        first = members[0]
        for other in members[1:]:
            for side in ("src_tokenizer", "tgt_tokenizer"):
                if getattr(other, side).sha256 != getattr(first, side).sha256:
                    raise UserError(
                        f"an ensemble needs one tokenizer: {other.path} and {first.path} have "
                        f"different {side.split('_')[0]} SentencePiece models"
                    )
        self.members = members
        self.recipe = first.recipe
        self.src_tokenizer = first.src_tokenizer
        self.tgt_tokenizer = first.tgt_tokenizer
        self.device = device
        if precision == "auto":
            precision = self.recipe.train.precision if device.type == "cuda" else "fp32"
        if precision not in ("fp32", "bf16", "fp16"):
            raise UserError(f"--precision must be auto, fp32, bf16 or fp16, got {precision!r}")
        self.autocast = autocast_for(device, precision)
        self.models = [m.model for m in members]

    def translate(
        self,
        lines: Iterable[str],
        options: DecodeOptions,
        *,
        warn: Callable[[str], None] = lambda message: None,
        done: Callable[[int], None] = lambda lines: None,
        window: int = WINDOW_LINES,
    ) -> Iterator[Translation]:
        """Translations of `lines`, one per line, in order (lines without their newline).

        `warn` receives truncation warnings; `done(n)` is called as every batch finishes with
        the number of lines it translated (for progress displays)."""
        options.check()
        numbered = enumerate(lines, start=1)
        while chunk := list(itertools.islice(numbered, window)):
            yield from self._translate_window(chunk, options, warn, done)

    def _translate_window(
        self,
        chunk: list[tuple[int, str]],
        options: DecodeOptions,
        warn: Callable[[str], None],
        done: Callable[[int], None],
    ) -> list[Translation]:
        """Encode, batch by length, search, and restore the order of one window of lines."""
        encoded = self.src_tokenizer.encode([text for _, text in chunk])
        keep = options.max_src_tokens - 1  # room for the EOS
        truncated = [len(ids) > keep for ids in encoded]
        for (number, _), ids, cut in zip(chunk, encoded, truncated, strict=True):
            if cut:
                warn(
                    f"line {number}: {len(ids)} source pieces, truncated to {keep} "
                    "(--max-src-tokens)"
                )
        encoded = [ids[:keep] for ids in encoded]
        todo = np.array([i for i, ids in enumerate(encoded) if ids], dtype=np.int64)
        hyps: list[list[Hypothesis]] = [[] for _ in chunk]
        if len(todo):
            lengths = np.array([len(encoded[i]) for i in todo], dtype=np.int64)
            batches = make_batches(
                lengths,
                np.zeros_like(lengths),
                batch_tokens=options.batch_tokens,
                rng=np.random.default_rng(0),
            )
            for batch in sorted(batches, key=lambda b: int(b[0])):
                rows = todo[batch].tolist()
                found = self._search([encoded[i] for i in rows], options)
                for i, result in zip(rows, found, strict=True):
                    hyps[i] = result
                done(len(rows))
        done(len(chunk) - len(todo))  # the empty lines
        return [
            Translation(
                line=number,
                source=text,
                texts=[self.tgt_tokenizer.decode(h.tokens) for h in found] or [""],
                hyps=found,
                src_pieces=self._pieces(self.src_tokenizer, ids, options.attention),
                tgt_pieces=self._pieces(
                    self.tgt_tokenizer, found[0].tokens if found else [], options.attention
                ),
                truncated=cut,
            )
            for (number, text), found, ids, cut in zip(chunk, hyps, encoded, truncated, strict=True)
        ]

    @staticmethod
    def _pieces(tokenizer: Tokenizer, ids: list[int], wanted: bool) -> list[str]:
        return [tokenizer.sp.id_to_piece(int(i)) for i in ids] if wanted else []

    def _search(self, sources: list[list[int]], options: DecodeOptions) -> list[list[Hypothesis]]:
        """Search one batch of encoded, non-empty sources."""
        src = pad([*ids, EOS_ID] for ids in sources).to(self.device)
        src_lens = torch.tensor([len(ids) + 1 for ids in sources], device=self.device)
        model: Any = self.models[0] if len(self.models) == 1 else self.models
        with torch.inference_mode(), self.autocast:
            if options.greedy:
                found = greedy_hypotheses(model, src, src_lens, max_len_ratio=options.max_len_ratio)
                return [[h] for h in found]
            return beam_search(
                model,
                src,
                src_lens,
                beam_size=options.beam_size,
                alpha=options.alpha,
                max_len_ratio=options.max_len_ratio,
                nbest=options.nbest,
                attention=options.attention,
            )


def load_translator(
    paths: list[Path], *, device: str = "auto", precision: str = "auto"
) -> Translator:
    """Load every `--model` (checkpoint, run directory or recipe) onto one device; `precision`
    as `nmtkit translate --precision`."""
    if not paths:
        raise UserError("give at least one --model (a checkpoint, a run directory or a recipe)")
    where = pick_device(device)
    models = [load_model(resolve_checkpoint(p), where) for p in paths]
    return Translator(models, where, precision)


# ------------------------------------------------------------------------- files and streams

FORMATS = ("text", "tsv", "jsonl")
MAX_WARNINGS = 10  # truncation warnings printed one by one; the rest are counted


@dataclass
class TranslateStats:
    lines: int = 0
    target_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0


def read_lines(stream: Iterable[bytes], name: str) -> Iterator[str]:
    """Decoded lines without their line end (LF or CRLF); invalid UTF-8 is a UserError."""
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{name}, line {number}: not valid UTF-8 (byte {exc.start + 1} of the line); "
                "nmtkit reads UTF-8 text only (convert with `iconv -t UTF-8`)"
            ) from None
        yield text.removesuffix("\n").removesuffix("\r")


def format_translation(result: Translation, fmt: str) -> str:
    """One output line (no newline): the best text, `text<TAB>score` per n-best, or JSON."""
    if fmt == "text":
        return _one_line(result.texts[0])
    if fmt == "tsv":
        return "\t".join(
            f"{_one_line(text)}\t{h.score:.4f}"
            for text, h in zip(result.texts, result.hyps, strict=False)
        )
    record: dict[str, Any] = {
        "line": result.line,
        "source": result.source,
        "nbest": [
            {"text": text, "score": round(h.score, 4), "log_prob": round(h.log_prob, 4)}
            for text, h in zip(result.texts, result.hyps, strict=False)
        ],
    }
    if result.truncated:
        record["truncated"] = True
    best = result.hyps[0] if result.hyps else None
    if best is not None and best.attention is not None:
        record["attention"] = {
            "source": [*result.src_pieces, "</s>"],
            "target": [*result.tgt_pieces, "</s>"],
            "weights": [[round(w, 4) for w in row] for row in best.attention.tolist()],
        }
    return json.dumps(record, ensure_ascii=False)


def _one_line(text: str) -> str:
    """Never let a line break inside a translation change the line count."""
    return text.replace("\r", " ").replace("\n", " ")


def count_lines(path: Path) -> int:
    """Lines in a file (a last line without newline counts), for the progress bar."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def translate_file(
    models: list[Path],
    *,
    input_path: Path | None,
    output_path: Path | None,
    fmt: str = "text",
    device: str = "auto",
    precision: str = "auto",
    show_progress: bool | None = None,
    **overrides: Any,
) -> TranslateStats:
    """`nmtkit translate`: a file (None: stdin) to a file (None: stdout).

    `overrides` are DecodeOptions fields; the rest come from the first model's recipe. A file
    output is written as `NAME.partial` and renamed when complete, so an interrupted run never
    leaves a truncated file under the final name. The progress bar (stderr) is on by default
    for a file input unless stdout is a pipe.
    """
    from nmtkit import console

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if input_path is not None and not input_path.is_file():
        raise UserError(f"input {input_path} does not exist or is not a file")
    translator = load_translator(models, device=device, precision=precision)
    options = DecodeOptions.from_recipe(translator.recipe.decode, **overrides)
    options.check()
    if options.attention and fmt != "jsonl":
        raise UserError("--attention needs --format jsonl (the matrix goes into the JSON)")
    if show_progress is None:
        show_progress = input_path is not None and (output_path is not None or sys.stdout.isatty())
    stats = TranslateStats()

    def warn(message: str) -> None:
        stats.truncated += 1
        if stats.truncated <= MAX_WARNINGS:
            console.info(f"[yellow]warning:[/] {message}")

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        source = (
            stack.enter_context(open(input_path, "rb"))
            if input_path is not None
            else sys.stdin.buffer
        )
        name = str(input_path) if input_path is not None else "stdin"
        # Interactive input: translate each line as it comes instead of waiting for a window.
        window = 1 if input_path is None and sys.stdin.isatty() else WINDOW_LINES
        bar = console.progress("sentences") if show_progress else None
        if bar is not None:
            stack.enter_context(bar)
            total = count_lines(input_path) if input_path is not None else None
            task = bar.add_task("translate", total=total)
        results = translator.translate(
            read_lines(source, name),
            options,
            warn=warn,
            done=(lambda n: bar.advance(task, n)) if bar is not None else (lambda n: None),
            window=window,
        )
        _write_results(results, _open_output(stack, output_path), output_path, fmt, stats)
    if output_path is not None:
        os.replace(_partial(output_path), output_path)
    stats.seconds = time.perf_counter() - start
    if stats.truncated > MAX_WARNINGS:
        console.info(f"[yellow]warning:[/] {stats.truncated} lines truncated in all")
    if show_progress:
        rate = stats.lines / max(stats.seconds, 1e-9)
        console.info(f"translated {stats.lines:,} lines in {stats.seconds:.1f} s ({rate:,.1f}/s)")
    return stats


def _write_results(
    results: Iterable[Translation], out: Any, path: Path | None, fmt: str, stats: TranslateStats
) -> None:
    """Write one line per result to `out` (NAME.partial for a file `path`), counting them.
    SIGINT/SIGTERM stop it between lines, never inside one, and say what was kept."""
    from nmtkit import console

    with Interrupts() as interrupts:
        try:
            for result in results:
                with interrupts.deferred():
                    out.write(format_translation(result, fmt) + "\n")
                stats.lines += 1
                stats.target_tokens += len(result.hyps[0].tokens) + 1 if result.hyps else 0
            out.flush()
        except KeyboardInterrupt:
            if path is not None:
                out.flush()
                done = count_lines(_partial(path))  # the signal may fall after a write
                console.info(
                    f"interrupted after {done:,} lines; they are in {_partial(path)} "
                    f"({path} is written only by a complete run)"
                )
            raise


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _open_output(stack: contextlib.ExitStack, path: Path | None) -> Any:
    """stdout, or NAME.partial (renamed by the caller once everything is written)."""
    if path is None:
        return sys.stdout
    path.parent.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(open(_partial(path), "w", encoding="utf-8", newline="\n"))
