"""What search sees of a model: five methods, for one model or an ensemble of several.

    enc = model.encode(src, src_lens)             # src [B, S] -> opaque encoder output
    enc = model.select(enc, index)                # keep / repeat sentences: index [B'] -> B'
    state = model.init_state(enc)                 # decoder state before the first step
    log_probs, state, attn = model.step(prev, state, enc)   # prev [B] -> [B, V], ..., [B, S]
    state = model.reorder(state, index)           # keep / repeat rows of the state

`step` also takes K rows per encoder row (prev and state [B*K], the K rows of sentence b at
b*K .. b*K+K-1): beam search keeps one encoder row per sentence and repeats only the state.
Search uses nothing else, so a stub with hand-made log-probabilities can stand in for a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from nmtkit.models import Seq2Seq
from nmtkit.models.decoder import StepOutput


class SearchModel(Protocol):
    """The search interface (see the module docstring)."""

    def encode(self, src: Tensor, src_lens: Tensor) -> Any: ...
    def select(self, enc: Any, index: Tensor) -> Any: ...
    def init_state(self, enc: Any) -> Any: ...
    def step(self, prev_ids: Tensor, state: Any, enc: Any) -> StepOutput: ...
    def reorder(self, state: Any, index: Tensor) -> Any: ...


class SingleModel:
    """One `Seq2Seq` behind the search interface: its `encode`, the encoder output's `select`
    and the decoder's `init_state` / `step` / `reorder`."""

    def __init__(self, model: Seq2Seq) -> None:
        self.model = model

    def encode(self, src: Tensor, src_lens: Tensor) -> Any:
        return self.model.encode(src, src_lens)

    def select(self, enc: Any, index: Tensor) -> Any:
        return enc.select(index)

    def init_state(self, enc: Any) -> Any:
        return self.model.decoder.init_state(enc)

    def step(self, prev_ids: Tensor, state: Any, enc: Any) -> StepOutput:
        return self.model.decoder.step(prev_ids, state, enc)

    def reorder(self, state: Any, index: Tensor) -> Any:
        return self.model.decoder.reorder(state, index)


class Ensemble:
    """Several models decoding together: at each step the mean of their log-probabilities.

    Encoder outputs and decoder states are tuples with one entry per model. The attention
    returned is the mean of the members' attention (None if any member has none). The models
    must share the target vocabulary; `nmtkit.translate` checks that they share the tokenizers.
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        if len(models) < 2:
            raise ValueError("an ensemble needs at least two models")
        self.members = [SingleModel(m) for m in models]

    def encode(self, src: Tensor, src_lens: Tensor) -> Any:
        return tuple(m.encode(src, src_lens) for m in self.members)

    def select(self, enc: Any, index: Tensor) -> Any:
        return tuple(m.select(e, index) for m, e in zip(self.members, enc, strict=True))

    def init_state(self, enc: Any) -> Any:
        return tuple(m.init_state(e) for m, e in zip(self.members, enc, strict=True))

    def step(self, prev_ids: Tensor, state: Any, enc: Any) -> StepOutput:
        outs = [m.step(prev_ids, s, e) for m, s, e in zip(self.members, state, enc, strict=True)]
        log_probs = torch.stack([o.log_probs for o in outs]).mean(0)  # [B, V]
        attns = [o.attention for o in outs if o.attention is not None]
        attention = torch.stack(attns).mean(0) if len(attns) == len(outs) else None
        return StepOutput(log_probs, tuple(o.state for o in outs), attention)  # type: ignore[arg-type]

    def reorder(self, state: Any, index: Tensor) -> Any:
        return tuple(m.reorder(s, index) for m, s in zip(self.members, state, strict=True))


def as_search_model(models: Seq2Seq | Sequence[Seq2Seq] | SearchModel) -> SearchModel:
    """A `Seq2Seq`, a list of them (an ensemble when more than one) or a ready SearchModel."""
    if isinstance(models, Seq2Seq):
        return SingleModel(models)
    if isinstance(models, Sequence):
        return SingleModel(models[0]) if len(models) == 1 else Ensemble(models)
    return models
