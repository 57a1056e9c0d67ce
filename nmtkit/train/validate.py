"""Validation during training: loss and perplexity, and BLEU/chrF of greedy translations.

The translations are scored against the cleaned reference text of the valid split
(`RUN_DIR/data/text/valid.<tgt_lang>`) with `nmtkit.evaluate.score_corpus`, the same code that
`nmtkit evaluate` uses, on detokenized SentencePiece output.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nmtkit.data.batching import collate, make_batches
from nmtkit.data.prepare import PreparedData
from nmtkit.data.tokenizer import PAD_ID, Tokenizer
from nmtkit.evaluate import score_corpus
from nmtkit.models import Seq2Seq
from nmtkit.search.greedy import greedy_search
from nmtkit.train.loss import projected_loss

SAMPLES = 3  # sample translations written to the log at each validation


@dataclass
class ValidResult:
    loss: float
    ppl: float
    bleu: float
    chrf: float
    samples: list[dict[str, str]] = field(default_factory=list)

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


class Validator:
    """Holds the valid split, its fixed batches and references; `run(model)` scores a model."""

    def __init__(
        self,
        data: PreparedData,
        *,
        batch_tokens: int,
        decode_batch_tokens: int,
        max_len_ratio: float,
        device: torch.device,
    ) -> None:
        self.src, self.tgt = data.shards("valid")
        self.tokenizer: Tokenizer = data.tokenizer("tgt")
        text_dir = data.root / "text"
        self.refs = _read_lines(text_dir / f"valid.{data.manifest['tgt_lang']}")
        self.sources = _read_lines(text_dir / f"valid.{data.manifest['src_lang']}")
        self.device = device
        self.max_len_ratio = max_len_ratio
        rng = np.random.default_rng(0)  # fixed batches: validation is the same every time
        self.loss_batches = make_batches(
            self.src.lengths, self.tgt.lengths, batch_tokens=batch_tokens, rng=rng
        )
        zeros = np.zeros_like(self.src.lengths)
        self.decode_batches = make_batches(
            self.src.lengths, zeros, batch_tokens=decode_batch_tokens, rng=rng
        )

    @torch.no_grad()
    def run(self, model: Seq2Seq, autocast: AbstractContextManager[Any]) -> ValidResult:
        was_training = model.training
        model.eval()
        try:
            nll, tokens = self._nll(model, autocast)
            hyps = self._translate(model, autocast)
        finally:
            model.train(was_training)
        scores = score_corpus(hyps, self.refs)
        samples = [
            {"src": self.sources[i], "ref": self.refs[i], "hyp": hyps[i]}
            for i in range(min(SAMPLES, len(hyps)))
        ]
        loss = nll / max(tokens, 1)
        return ValidResult(loss, math.exp(min(loss, 50.0)), scores.bleu, scores.chrf, samples)

    def _nll(self, model: Seq2Seq, autocast: AbstractContextManager[Any]) -> tuple[float, int]:
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        tokens = 0
        for indices in self.loss_batches:
            batch = collate(self.src, self.tgt, indices)
            tokens += batch.tgt_tokens
            batch = batch.to(self.device)
            real = batch.tgt_out != PAD_ID
            with autocast:
                hidden = model(
                    batch.src, batch.src_lens, batch.tgt_in, positions=real, project=False
                )
                total += projected_loss(
                    hidden, model.decoder.output, batch.tgt_out[real], 0.0
                ).nll.double()
        return float(total), tokens

    def _translate(self, model: Seq2Seq, autocast: AbstractContextManager[Any]) -> list[str]:
        hyps = [""] * len(self.src)
        for indices in self.decode_batches:
            batch = collate(self.src, self.tgt, indices).to(self.device)
            with autocast:
                ids = greedy_search(
                    model, batch.src, batch.src_lens, max_len_ratio=self.max_len_ratio
                )
            for i, seq in zip(indices.tolist(), ids, strict=True):
                hyps[i] = self.tokenizer.decode(seq)
        return hyps


def _read_lines(path: Any) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
