"""Translate raw text with a trained model or an ensemble: the public Python API (README,
"From Python"). Lines go in windows of `WINDOW_LINES`, each SentencePiece-encoded, sorted by
length, cut into batches of at most `batch_tokens` source tokens (padding included), searched
and given back in input order, so memory stays bounded. An empty (or whitespace-only) line gives
an empty translation without running the model; a line longer than `max_src_tokens` pieces
is truncated, with a warning.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, ValidationError, model_validator

from nmtkit.builtin_recipes import builtin_recipes
from nmtkit.checkpoint import Checkpoint
from nmtkit.data.batching import make_batches, pad
from nmtkit.data.lexical import LexicalTable
from nmtkit.data.tokenizer import EOS_ID, Tokenizer
from nmtkit.device import autocast_for, inference_precision, pick_device
from nmtkit.errors import UserError
from nmtkit.models import Seq2Seq, build_model
from nmtkit.recipe import (
    MAX_LEN_RATIO,
    SHORTLIST_TOP_K,
    DecodeConfig,
    Precision,
    Recipe,
    load_recipe,
)
from nmtkit.search.beam import beam_search
from nmtkit.search.greedy import greedy_hypotheses
from nmtkit.search.hypothesis import Hypothesis
from nmtkit.search.model import Shortlist, as_search_model

# decode.shortlist auto: below this many target pieces a batch's shortlist is most of the
# vocabulary and costs more than it saves (whole command, fp32: the peers model, 1,400 pieces,
# beam 5 1.00x, greedy 0.95x; in-process: the demo, 3,000, 1.24x / 1.13x; Multi30k, 8,000,
# 1.68x / 1.28x; docs/benchmarks.md, "Decoding speed")
SHORTLIST_MIN_VOCAB = 2000
WINDOW_LINES = 4096  # lines sorted together; bounds memory and the reordering delay
ModelSource = str | Path  # a checkpoint, a run directory or a recipe

# What a user calls each option (the command line's flags; the server passes its JSON names)
# and the rule each bound states, for one-paragraph errors.
CLI_NAMES = {
    "beam_size": "--beam",
    "alpha": "--alpha",
    "max_len_ratio": "--max-len-ratio",
    "batch_tokens": "--batch-tokens",
    "max_src_tokens": "--max-src-tokens",
    "nbest": "--nbest",
    "greedy": "--greedy",
    "attention": "--attention",
    "precision": "--precision",
    "shortlist": "--shortlist",
    "shortlist_k": "--shortlist-k",
    "shortlist_frequent": "--shortlist-frequent",
}
RULES = {
    "beam_size": "must be at least 1",
    "alpha": "must be at least 0",
    "max_len_ratio": f"must be above 0 and at most {MAX_LEN_RATIO:g}",
    "batch_tokens": "must be at least 1",
    "max_src_tokens": "must be at least 2 (one piece and the EOS)",
    "nbest": "must be at least 1",
    "shortlist_k": f"must be between 1 and {SHORTLIST_TOP_K} (the candidates a table keeps)",
    "shortlist_frequent": "must be at least 0",
    "precision": "must be auto, fp32, bf16 or fp16",
}


class DecodeOptions(DecodeConfig):
    """How to search: the recipe's `decode:` settings (`DecodeConfig`, same names, same
    bounds) and the choices made per call. Build one with `Translator.defaults.replace(...)`
    (the model's recipe plus changes) or directly (the recipe defaults plus changes)."""

    nbest: int = Field(1, ge=1, description="hypotheses per line, best first")
    greedy: bool = Field(False, description="greedy search (fastest; no n-best)")
    attention: bool = Field(False, description="keep the best hypothesis's attention matrix")

    @model_validator(mode="after")
    def _nbest_fits(self) -> DecodeOptions:
        # {field} placeholders: `create` puts in the names the user knows the options by.
        if self.greedy and self.nbest > 1:
            raise ValueError("{nbest} needs beam search; drop {greedy}")
        if self.nbest > self.beam_size:
            raise ValueError(
                f"{{nbest}} {self.nbest} must be between 1 and {{beam_size}} {self.beam_size}"
            )
        return self

    @classmethod
    def create(cls, values: dict[str, Any], names: Mapping[str, str] = CLI_NAMES) -> DecodeOptions:
        """Validate `values`; a mistake is a UserError naming the option as `names` say (the
        command line's flags by default)."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise UserError(_describe_option_error(exc, names)) from None

    @classmethod
    def from_recipe(cls, cfg: DecodeConfig) -> DecodeOptions:
        return cls.create(cfg.model_dump())

    def replace(self, names: Mapping[str, str] = CLI_NAMES, /, **changes: Any) -> DecodeOptions:
        """A validated copy with `changes` (field name -> value; None keeps the value); errors
        name the options as `names` say."""
        given = {key: value for key, value in changes.items() if value is not None}
        return self.create({**self.model_dump(), **given}, names)


def _describe_option_error(exc: ValidationError, names: Mapping[str, str]) -> str:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in RULES:
        return f"{names.get(field, field)} {RULES[field]}, got {error.get('input')!r}"
    if error["type"] == "extra_forbidden":
        return f"unknown decoding option {field!r}; known: {', '.join(DecodeOptions.model_fields)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.format_map({key: names.get(key, key) for key in DecodeOptions.model_fields})


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

    def to_record(self) -> dict[str, Any]:
        """The JSON form (`translate --format jsonl`, `nmtkit serve`): line, source, n-best
        texts with score and log-probability (4 decimals), `truncated` when it was, and with
        attention the pieces (EOS included) and the weights, one row per target piece."""
        record: dict[str, Any] = {
            "line": self.line,
            "source": self.source,
            "nbest": [
                {"text": text, "score": round(h.score, 4), "log_prob": round(h.log_prob, 4)}
                for text, h in zip(self.texts, self.hyps, strict=False)
            ],
        }
        if self.truncated:
            record["truncated"] = True
        if self.hyps and (best := self.hyps[0]).attention is not None:
            record["attention"] = {
                "source": [*self.src_pieces, "</s>"],
                "target": [*self.tgt_pieces, "</s>"],
                "weights": [[round(w, 4) for w in row] for row in best.attention.tolist()],
            }
        return record


@dataclass
class LoadedModel:
    """One model as a Translator holds it."""

    path: Path | None  # None for a model given in memory
    model: Seq2Seq
    recipe: Recipe
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    lexical: LexicalTable | None = None  # the checkpoint's table, for shortlists


def resolve_checkpoint(path: ModelSource) -> Path:
    """A checkpoint file; a run directory (or a recipe, or a built-in recipe's name that is
    no path here) means its checkpoints/best.pt."""
    path = Path(path)
    if (path.is_file() and path.suffix in (".yaml", ".yml")) or (
        not path.exists() and str(path) in builtin_recipes()
    ):
        path = load_recipe(path).run_path
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f"model {path} does not exist (give a checkpoint, a run dir or a recipe)")
    for name in ("checkpoints/best.pt", "best.pt", "checkpoints/last.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise UserError(
        f"no checkpoint in {path}: looked for checkpoints/best.pt and last.pt; "
        "has the run been trained (`nmtkit train`)?"
    )


def load_model(path: Path, device: torch.device) -> LoadedModel:
    """Build the model a checkpoint describes and load its weights, in eval mode."""
    checkpoint = Checkpoint.read(path, map_location="cpu")
    try:
        recipe = checkpoint.recipe(path)
        src_tok, tgt_tok = checkpoint.tokenizer.load()
        model = build_model(recipe.model, src_tok.vocab_size, tgt_tok.vocab_size)
        model.load_state_dict(checkpoint.model)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UserError(
            f"{path} is an nmtkit checkpoint but its contents do not fit together "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from None
    model.to(device).eval()
    return LoadedModel(path, model, recipe, src_tok, tgt_tok, checkpoint.lexical)


class Translator:
    """One model or an ensemble (same tokenizers), ready to translate lines."""

    def __init__(
        self, members: Sequence[LoadedModel], device: torch.device, precision: str = "auto"
    ) -> None:
        if not members:
            raise UserError("give at least one --model (a checkpoint, a run directory or a recipe)")
        first = members[0]
        for other, side in itertools.product(members[1:], ("src_tokenizer", "tgt_tokenizer")):
            if getattr(other, side).sha256 != getattr(first, side).sha256:
                raise UserError(
                    f"an ensemble needs one tokenizer: {other.path} and {first.path} have "
                    f"different {side.split('_')[0]} SentencePiece models"
                )
        self.members = list(members)
        self.recipe = first.recipe
        self.src_tokenizer, self.tgt_tokenizer = first.src_tokenizer, first.tgt_tokenizer
        self.device = device
        self.models = [m.model for m in members]
        self.lexical = first.lexical
        self.defaults = DecodeOptions.from_recipe(self.recipe.decode)
        if precision != "auto":  # the caller's choice over the recipe's decode.precision
            self.defaults = self.defaults.replace(precision=precision)
        self.precision = self._precision(self.defaults)
        self._bf16_models: list[Seq2Seq] | None = None

    def uses_shortlist(self, options: DecodeOptions) -> bool:
        """Whether `options` decode with a vocabulary shortlist: asked for (True), or `auto`
        (the default), the checkpoint has a lexical table and the target vocabulary has at
        least SHORTLIST_MIN_VOCAB pieces."""
        if self.lexical is None or options.shortlist is False:
            return False
        return options.shortlist is True or self.tgt_tokenizer.vocab_size >= SHORTLIST_MIN_VOCAB

    def _precision(self, options: DecodeOptions) -> Precision:
        """`options.precision`; `auto` is this translator's default (`defaults.precision`, set
        at load), and when that is `auto` too, the rule of `device.inference_precision`."""
        name = options.precision if options.precision != "auto" else self.defaults.precision
        return inference_precision(name, self.device, self.recipe.train.precision)

    def _bf16_weights(self, options: DecodeOptions) -> bool:
        return self._precision(options) == "bf16" and self.device.type == "cpu"

    def models_for(self, options: DecodeOptions) -> list[Seq2Seq]:
        """The models that decode with `options`: bf16 on a CPU is a copy of each model with
        bf16 weights, made once (autocast would cast the weights and activations at every
        step and gained 1.09-1.27x over fp32 for beam 5 on the Multi30k model, the copy
        1.38-1.57x; docs/dev/performance-notes.md)."""
        if not self._bf16_weights(options):
            return self.models
        if self._bf16_models is None:  # normal tensors even when asked inside inference_mode
            with torch.inference_mode(False), torch.no_grad():
                self._bf16_models = [copy.deepcopy(m).to(torch.bfloat16) for m in self.models]
        return self._bf16_models

    def autocast_for(self, options: DecodeOptions) -> contextlib.AbstractContextManager[Any]:
        """The autocast context `options.precision` asks for: bf16/fp16 autocast on a GPU,
        nothing for fp32 or for bf16 on a CPU (its models are bf16 copies, `models_for`)."""
        if self._bf16_weights(options):
            return contextlib.nullcontext()
        return autocast_for(self.device, self._precision(options))

    @classmethod
    def load(
        cls,
        models: ModelSource | Sequence[ModelSource],
        *,
        device: str = "auto",
        precision: str = "auto",
    ) -> Translator:
        """Load a checkpoint, a run directory or a recipe (several: an ensemble) onto one
        device. `precision` is `auto` (the recipe's `decode.precision`; when that is auto too,
        `train.precision` on a GPU and fp32 elsewhere), fp32, bf16 (a bf16 copy of the model
        on a CPU, autocast on a GPU) or fp16 (autocast, CUDA); softmax and scores stay fp32.
        It becomes `defaults.precision`."""
        sources = [models] if isinstance(models, str | Path) else list(models)
        where = pick_device(device)
        return cls([load_model(resolve_checkpoint(p), where) for p in sources], where, precision)

    @classmethod
    def from_model(
        cls,
        model: Seq2Seq,
        recipe: Recipe,
        tokenizers: tuple[Tokenizer, Tokenizer],
        *,
        precision: str = "auto",
    ) -> Translator:
        """A model already in memory (e.g. being trained), on its own device and as it is:
        the caller sets eval mode."""
        member = LoadedModel(None, model, recipe, *tokenizers)
        return cls([member], next(model.parameters()).device, precision)

    def translate(
        self, lines: Sequence[str], options: DecodeOptions | None = None
    ) -> list[Translation]:
        """One translation per line (lines without their newline), in order."""
        return list(self.translate_stream(lines, options))

    def translate_stream(
        self,
        lines: Iterable[str],
        options: DecodeOptions | None = None,
        *,
        warn: Callable[[str], None] = lambda message: None,
        done: Callable[[int], None] = lambda lines: None,
        window: int = WINDOW_LINES,
    ) -> Iterator[Translation]:
        """`translate` for a stream of any length, a window of lines at a time. `warn`
        receives truncation warnings; `done(n)` is called as every batch finishes with the
        number of lines it translated (for progress displays)."""
        options = options or self.defaults
        if options.shortlist is True and self.lexical is None:
            raise UserError(
                f"--shortlist needs the lexical table that training stores in the checkpoint; "
                f"{self.members[0].path or 'this model'} has none (trained by an older nmtkit, or "
                "given in memory): train it again with this version, or drop --shortlist"
            )
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
        encoded, truncated = self.encode_sources(chunk, options.max_src_tokens, warn)
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
        pieces = self._pieces if options.attention else lambda tokenizer, ids: []
        return [
            Translation(
                line=number,
                source=text,
                texts=[self.tgt_tokenizer.decode(h.tokens) for h in found] or [""],
                hyps=found,
                src_pieces=pieces(self.src_tokenizer, ids),
                tgt_pieces=pieces(self.tgt_tokenizer, found[0].tokens if found else []),
                truncated=cut,
            )
            for (number, text), found, ids, cut in zip(chunk, hyps, encoded, truncated, strict=True)
        ]

    def encode_sources(
        self, chunk: list[tuple[int, str]], max_src_tokens: int, warn: Callable[[str], None]
    ) -> tuple[list[list[int]], list[bool]]:
        """SentencePiece ids of each (line number, source) pair, cut to `max_src_tokens - 1`
        pieces (room for EOS) with a warning naming the line, and which lines were cut (for
        translating and scoring alike)."""
        encoded = self.src_tokenizer.encode([text for _, text in chunk])
        keep = max_src_tokens - 1
        truncated = [len(ids) > keep for ids in encoded]
        for (number, _), ids, cut in zip(chunk, encoded, truncated, strict=True):
            if cut:
                warn(
                    f"line {number}: {len(ids)} source pieces, truncated to {keep} "
                    "(--max-src-tokens)"
                )
        return [ids[:keep] for ids in encoded], truncated

    @staticmethod
    def _pieces(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
        return [tokenizer.sp.id_to_piece(int(i)) for i in ids]

    def _search(self, sources: list[list[int]], options: DecodeOptions) -> list[list[Hypothesis]]:
        """Search one batch of encoded, non-empty sources."""
        src = pad([*ids, EOS_ID] for ids in sources).to(self.device)
        src_lens = torch.tensor([len(ids) + 1 for ids in sources], device=self.device)
        shortlist = None
        lexical = self.lexical if self.uses_shortlist(options) else None
        if lexical is not None:
            vocab, allowed = lexical.batch_shortlist(
                sources, options.shortlist_k, options.shortlist_frequent
            )
            shortlist = Shortlist(
                torch.from_numpy(vocab).to(self.device), torch.from_numpy(allowed).to(self.device)
            )
        with torch.inference_mode(), self.autocast_for(options):
            model = as_search_model(self.models_for(options), shortlist)
            if options.greedy:
                ratio = options.max_len_ratio
                found = [[h] for h in greedy_hypotheses(model, src, src_lens, max_len_ratio=ratio)]
            else:
                found = beam_search(
                    model,
                    src,
                    src_lens,
                    beam_size=options.beam_size,
                    alpha=options.alpha,
                    max_len_ratio=options.max_len_ratio,
                    nbest=options.nbest,
                    attention=options.attention,
                )
        if shortlist is None:
            return found
        real = shortlist.vocab.cpu().tolist()  # shortlist positions -> target ids
        return [[replace(h, tokens=[real[t] for t in h.tokens]) for h in hyps] for hyps in found]
