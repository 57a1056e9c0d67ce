"""Forced decoding: how likely a model finds given translations (`nmtkit score`, `Scorer`).

Each (source, translation) pair is SentencePiece-encoded with the model's tokenizers and run
through the teacher-forced forward (the model's `forward`, which equals a loop of the decoder's
`step`): the result is the sum of the log-probabilities of the translation's pieces and of
EOS, exactly what beam search reports as `log_prob` when it produces those pieces itself, and
`score` is that sum over the same GNMT length penalty beam search ranks by. An ensemble scores
with the mean of its members' log-probabilities, as it decodes.

Pairs are scored in windows of `WINDOW_LINES`, sorted by length and cut into batches of at
most `batch_tokens` tokens (padding included), and given back in input order; a source longer
than `max_src_tokens` pieces is truncated as `nmtkit translate` truncates it (with a warning),
a translation is never cut. Empty sources and translations are scored too (EOS alone).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nmtkit import console
from nmtkit.data.batching import make_batches, pad
from nmtkit.data.sources import read_parallel_files
from nmtkit.data.tokenizer import BOS_ID, EOS_ID
from nmtkit.errors import Interrupts, UserError
from nmtkit.paths import partial_output
from nmtkit.search.hypothesis import length_penalty
from nmtkit.translate import WINDOW_LINES, DecodeOptions, ModelSource, Translator
from nmtkit.translate_files import MAX_WARNINGS, count_lines

FORMATS = ("tsv", "jsonl")


@dataclass(frozen=True)
class PairScore:
    """The model's verdict on one (source, translation) pair."""

    line: int  # 1-based input line number
    log_prob: float  # sum of the piece log-probabilities, EOS included
    score: float  # log_prob / GNMT length penalty (the recipe's decode.alpha): beam's ranking
    pieces: list[str]  # the translation's pieces as scored, EOS included
    piece_log_probs: list[float]  # one per piece, EOS included
    truncated: bool = False  # the source was cut to max_src_tokens

    @property
    def tokens(self) -> int:
        """Pieces scored, EOS included."""
        return len(self.piece_log_probs)

    @property
    def per_token(self) -> float:
        """The mean log-probability per piece (EOS included): comparable across lengths."""
        return self.log_prob / self.tokens

    def to_record(self, pieces: bool = False) -> dict[str, Any]:
        """The JSON form (`nmtkit score --format jsonl`), 4 decimals; with `pieces` the pieces
        and their log-probabilities too."""
        record: dict[str, Any] = {
            "line": self.line,
            "log_prob": round(self.log_prob, 4),
            "per_token": round(self.per_token, 4),
            "score": round(self.score, 4),
            "tokens": self.tokens,
        }
        if self.truncated:
            record["truncated"] = True
        if pieces:
            record["pieces"] = self.pieces
            record["piece_log_probs"] = [round(p, 4) for p in self.piece_log_probs]
        return record

    def to_tsv(self) -> str:
        """`log_prob<TAB>per_token<TAB>tokens`."""
        return f"{self.log_prob:.4f}\t{self.per_token:.4f}\t{self.tokens}"


class Scorer:
    """Scores translations with a loaded model or ensemble (a `Translator`'s members,
    tokenizers, device and precision)."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    @classmethod
    def load(
        cls,
        models: ModelSource | Sequence[ModelSource],
        *,
        device: str = "auto",
        precision: str = "auto",
    ) -> Scorer:
        """As `Translator.load`: a checkpoint, run directory or recipe; several: an ensemble."""
        return cls(Translator.load(models, device=device, precision=precision))

    def score(
        self,
        sources: Sequence[str],
        translations: Sequence[str],
        *,
        batch_tokens: int | None = None,
        max_src_tokens: int | None = None,
    ) -> list[PairScore]:
        """One score per pair, in order; the lists must be as long as each other."""
        if len(sources) != len(translations):
            raise UserError(
                f"scoring needs one translation per source: got {len(sources)} sources and "
                f"{len(translations)} translations"
            )
        pairs = zip(sources, translations, strict=True)
        return list(
            self.score_stream(pairs, batch_tokens=batch_tokens, max_src_tokens=max_src_tokens)
        )

    def score_stream(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        batch_tokens: int | None = None,
        max_src_tokens: int | None = None,
        warn: Callable[[str], None] = lambda message: None,
        window: int = WINDOW_LINES,
    ) -> Iterator[PairScore]:
        """`score` for a stream of pairs of any length, a window at a time; `warn` receives
        the truncation warnings. Budgets default to the model's recipe (`decode:`)."""
        options = self.translator.defaults.replace(
            batch_tokens=batch_tokens, max_src_tokens=max_src_tokens
        )  # validated here, before anything is read or written; errors name the flags
        return self._stream(pairs, options, warn, window)

    def _stream(
        self,
        pairs: Iterable[tuple[str, str]],
        options: DecodeOptions,
        warn: Callable[[str], None],
        window: int,
    ) -> Iterator[PairScore]:
        numbered = enumerate(pairs, start=1)
        while chunk := list(itertools.islice(numbered, window)):
            sources, cut = self.translator.encode_sources(
                [(number, src) for number, (src, _) in chunk], options.max_src_tokens, warn
            )
            targets = self.translator.tgt_tokenizer.encode([tgt for _, (_, tgt) in chunk])
            found = self.score_ids(sources, targets, batch_tokens=options.batch_tokens)
            rows = zip(chunk, targets, found, cut, strict=True)
            for (number, _), ids, log_probs, was_cut in rows:
                yield self._result(number, ids, log_probs, was_cut)

    def score_ids(
        self, sources: list[list[int]], targets: list[list[int]], *, batch_tokens: int
    ) -> list[list[float]]:
        """The log-probability of each target piece and of the final EOS, per pair: ids
        without EOS in, batched by length, in input order out."""
        src_lens = np.array([len(ids) + 1 for ids in sources], dtype=np.int64)
        tgt_lens = np.array([len(ids) + 1 for ids in targets], dtype=np.int64)
        out: list[list[float]] = [[] for _ in sources]
        if not len(sources):
            return out
        batches = make_batches(
            src_lens - 1, tgt_lens - 1, batch_tokens=batch_tokens, rng=np.random.default_rng(0)
        )
        for batch in sorted(batches, key=lambda b: int(b[0])):
            rows = batch.tolist()
            found = self._score_batch([sources[i] for i in rows], [targets[i] for i in rows])
            for i, values in zip(rows, found, strict=True):
                out[i] = values
        return out

    def _score_batch(self, sources: list[list[int]], targets: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log-probabilities of one batch."""
        device = self.translator.device
        src = pad([*ids, EOS_ID] for ids in sources).to(device)
        src_lens = torch.tensor([len(ids) + 1 for ids in sources], device=device)
        tgt_in = pad([BOS_ID, *ids] for ids in targets).to(device)
        tgt_out = pad([*ids, EOS_ID] for ids in targets).to(device)
        lengths = torch.tensor([len(ids) + 1 for ids in targets], device=device)
        positions = torch.arange(tgt_in.size(1), device=device) < lengths.unsqueeze(1)  # [B, T]
        gold = tgt_out[positions].unsqueeze(1)  # [N, 1], row-major like the projected logits
        total: torch.Tensor | None = None
        options = self.translator.defaults
        with torch.inference_mode(), self.translator.autocast_for(options):
            for model in self.translator.models_for(options):
                logits = model(src, src_lens, tgt_in, positions=positions)  # [N, V]
                picked = F.log_softmax(logits.float(), dim=-1).gather(1, gold).squeeze(1)
                total = picked if total is None else total + picked
        assert total is not None
        values = (total / len(self.translator.models)).cpu().split(lengths.tolist())
        return [v.tolist() for v in values]

    def _result(
        self, number: int, ids: list[int], log_probs: list[float], truncated: bool
    ) -> PairScore:
        log_prob = float(sum(log_probs))
        alpha = self.translator.defaults.alpha
        tokenizer = self.translator.tgt_tokenizer
        return PairScore(
            line=number,
            log_prob=log_prob,
            score=log_prob / length_penalty(len(log_probs), alpha),
            pieces=[*(tokenizer.sp.id_to_piece(int(i)) for i in ids), "</s>"],
            piece_log_probs=log_probs,
            truncated=truncated,
        )


def score_files(
    scorer: Scorer,
    *,
    src_path: Path,
    tgt_path: Path,
    output_path: Path | None,
    fmt: str = "tsv",
    pieces: bool = False,
    batch_tokens: int | None = None,
    max_src_tokens: int | None = None,
) -> int:
    """`nmtkit score`: one output line per (src, tgt) line pair, in order, to a file (written
    as NAME.PID.partial, fsynced and renamed when complete; a full disk is a clear error) or
    stdout; returns the number of lines. Files with different line counts are an error before
    anything is written."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if pieces and fmt != "jsonl":
        raise UserError("--pieces needs --format jsonl (the pieces go into the JSON)")
    for flag, path in (("--src", src_path), ("--tgt", tgt_path)):
        if not path.is_file():
            raise UserError(f"{flag} {path} does not exist or is not a file")
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    if n_src != n_tgt:
        raise UserError(
            f"--src {src_path} has {n_src:,} lines but --tgt {tgt_path} has {n_tgt:,}: line i "
            "of the translations must translate line i of the sources; nothing was scored"
        )
    warnings = 0

    def warn(message: str) -> None:
        nonlocal warnings
        warnings += 1
        if warnings <= MAX_WARNINGS:
            console.info(f"[yellow]warning:[/] {message}")

    start, written = time.perf_counter(), 0
    results = scorer.score_stream(  # checks the options before the output is opened
        read_parallel_files(src_path, tgt_path),
        batch_tokens=batch_tokens,
        max_src_tokens=max_src_tokens,
        warn=warn,
    )
    with contextlib.ExitStack() as stack:
        out: Any = sys.stdout
        if output_path is not None:
            out = stack.enter_context(partial_output(output_path))
        with Interrupts() as interrupts:
            for result in results:
                line = (
                    result.to_tsv()
                    if fmt == "tsv"
                    else json.dumps(result.to_record(pieces), ensure_ascii=False)
                )
                with interrupts.deferred():
                    out.write(line + "\n")
                written += 1
        out.flush()
    if output_path is not None:
        seconds = time.perf_counter() - start
        console.info(f"scored {written:,} pairs in {seconds:.1f} s into {output_path}")
    if warnings > MAX_WARNINGS:
        console.info(f"[yellow]warning:[/] {warnings} sources truncated in all")
    return written
