"""Validation during training: loss and perplexity, and BLEU/chrF of greedy translations.

The valid sources are translated by `nmtkit.Translator` (the model in memory, in the training
precision) exactly as `nmtkit translate --greedy` would, and scored against the cleaned
references by `score_corpus`, the code of `nmtkit evaluate`.
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
    """The valid split: fixed loss batches, sources and references; `run(model)` scores one."""

    def __init__(self, data: PreparedData, recipe: Recipe, *, device: torch.device) -> None:
        self.src, self.tgt = data.shards("valid")
        self.tokenizers = data.tokenizer("src"), data.tokenizer("tgt")
        self.sources, self.refs = data.read_text("valid", "src"), data.read_text("valid", "tgt")
        self.recipe, self.device = recipe, device
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
            translator = Translator.from_model(
                model, self.recipe, self.tokenizers, precision=self.recipe.train.precision
            )
            hyps = [result.texts[0] for result in translator.translate(self.sources, self.options)]
        finally:
            model.train(was_training)
        scores = score_corpus(hyps, self.refs)
        firsts = zip(self.sources[:SAMPLES], self.refs, hyps, strict=False)
        samples = [{"src": src, "ref": ref, "hyp": hyp} for src, ref, hyp in firsts]
        loss = nll / max(tokens, 1)
        return ValidResult(loss, math.exp(min(loss, 50.0)), scores.bleu, scores.chrf, samples)

    def _nll(self, model: Seq2Seq, autocast: AbstractContextManager[Any]) -> tuple[float, int]:
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        tokens = 0
        for indices in self.loss_batches:
            b = collate(self.src, self.tgt, indices)
            tokens += b.tgt_tokens
            b = b.to(self.device)
            real = b.tgt_out != PAD_ID
            with autocast:
                hidden = model(b.src, b.src_lens, b.tgt_in, positions=real, project=False)
                sums = projected_loss(hidden, model.decoder.output, b.tgt_out[real], 0.0)
                total += sums.nll.double()
        return float(total), tokens
