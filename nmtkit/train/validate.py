"""Validation during training: loss and perplexity, and BLEU/chrF of greedy translations.

The cleaned source text of the valid split (`RUN_DIR/data/text/valid.<src_lang>`) is
translated greedily through `nmtkit.Translator` (the model in memory, in the training
precision), exactly as `nmtkit translate --greedy` would, and scored against the cleaned
references with `nmtkit.evaluate.scores.score_corpus`, the same code that `nmtkit evaluate`
uses, on detokenized SentencePiece output.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nmtkit.data.batching import collate, make_batches
from nmtkit.data.manifest import PreparedData
from nmtkit.data.tokenizer import PAD_ID
from nmtkit.evaluate.scores import score_corpus
from nmtkit.models import Seq2Seq
from nmtkit.recipe import Recipe
from nmtkit.train.loss import projected_loss
from nmtkit.translate import DecodeOptions, Translator

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
    """Holds the valid split, its fixed loss batches, sources and references; `run(model)`
    scores a model."""

    def __init__(self, data: PreparedData, recipe: Recipe, *, device: torch.device) -> None:
        self.src, self.tgt = data.shards("valid")
        self.tokenizers = data.tokenizer("src"), data.tokenizer("tgt")
        self.refs = data.read_text("valid", "tgt")
        self.sources = data.read_text("valid", "src")
        self.recipe = recipe
        self.device = device
        rng = np.random.default_rng(0)  # fixed batches: validation is the same every time
        self.loss_batches = make_batches(
            self.src.lengths, self.tgt.lengths, batch_tokens=recipe.train.batch_tokens, rng=rng
        )
        self.options = DecodeOptions(
            greedy=True,
            max_len_ratio=recipe.decode.max_len_ratio,
            batch_tokens=recipe.decode.batch_tokens,
            # Every piece of the valid sources, as training saw them: nothing is truncated.
            max_src_tokens=max(2, int(self.src.lengths.max(initial=0)) + 1),
        )

    @torch.no_grad()
    def run(self, model: Seq2Seq, autocast: AbstractContextManager[Any]) -> ValidResult:
        was_training = model.training
        model.eval()
        try:
            nll, tokens = self._nll(model, autocast)
            hyps = self._translate(model)
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

    def _translate(self, model: Seq2Seq) -> list[str]:
        """Greedy translations of the valid sources by the model as it is now."""
        translator = Translator.from_model(
            model, self.recipe, self.tokenizers, precision=self.recipe.train.precision
        )
        return [result.texts[0] for result in translator.translate(self.sources, self.options)]
