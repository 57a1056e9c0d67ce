"""What search sees of a model: five methods, for one model or an ensemble of several.

    enc = model.encode(src, src_lens)             # src [B, S] -> opaque encoder output
    enc = model.select(enc, index)                # keep / repeat sentences: index [B'] -> B'
    state = model.init_state(enc)                 # decoder state before the first step
    log_probs, state, attn = model.step(prev, state, enc)   # prev [B] -> [B, V], ..., [B, S]
    state = model.reorder(state, index)           # keep / repeat rows of the state

`step` also takes K rows per encoder row (prev and state [B*K], the K rows of sentence b at
b*K .. b*K+K-1): beam search keeps one encoder row per sentence and repeats only the state.
Search uses nothing else, so a stub with hand-made log-probabilities can stand in for a network.

With a vocabulary `Shortlist` the search runs in shortlist space: the output layer computes
the logits of the batch's shortlist `vocab` (sorted target ids, the special ids 0..3 first,
see `data.lexical`) only, each sentence's log-probabilities are renormalised over its own
shortlist (`allowed`; the other ids get -inf), and `step` takes and gives positions in `vocab`,
so EOS, BOS and PAD keep their ids and search needs no change. The caller maps the tokens found
back with `vocab[tokens]`. Each sentence's output depends on its own shortlist only, so it
still does not depend on the other sentences of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from nmtkit.models import Seq2Seq
from nmtkit.models.decoder import StepOutput


@dataclass(frozen=True)
class Shortlist:
    """vocab [N]: the target ids the batch may produce (sorted, 0..3 first); allowed [B, N]:
    which of them each source sentence of the batch (in `encode`'s order) may produce."""

    vocab: Tensor
    allowed: Tensor


class SearchModel(Protocol):
    """The search interface (see the module docstring)."""

    def encode(self, src: Tensor, src_lens: Tensor) -> Any: ...
    def select(self, enc: Any, index: Tensor) -> Any: ...
    def init_state(self, enc: Any) -> Any: ...
    def step(self, prev_ids: Tensor, state: Any, enc: Any) -> StepOutput: ...
    def reorder(self, state: Any, index: Tensor) -> Any: ...


class SingleModel:
    """One `Seq2Seq` behind the search interface: its `encode`, the encoder output's `select`
    and the decoder's `init_state` / `step` / `reorder`; with a `shortlist`, over it (the
    encoder output then carries the rows of `~allowed` of its sentences)."""

    def __init__(self, model: Seq2Seq, shortlist: Shortlist | None = None) -> None:
        self.model = model
        self.shortlist = shortlist
        self.output = None
        if shortlist is not None:
            self.output = model.decoder.output.restricted(shortlist.vocab)

    def encode(self, src: Tensor, src_lens: Tensor) -> Any:
        enc = self.model.encode(src, src_lens)
        return enc if self.shortlist is None else (enc, ~self.shortlist.allowed)  # blocked

    def select(self, enc: Any, index: Tensor) -> Any:
        if self.shortlist is None:
            return enc.select(index)
        return enc[0].select(index), enc[1].index_select(0, index)

    def init_state(self, enc: Any) -> Any:
        return self.model.decoder.init_state(enc if self.shortlist is None else enc[0])

    def step(self, prev_ids: Tensor, state: Any, enc: Any) -> StepOutput:
        if self.shortlist is None or self.output is None:
            return self.model.decoder.step(prev_ids, state, enc)
        enc, blocked = enc  # [B, N]: the ids outside each sentence's own shortlist
        per_row = prev_ids.size(0) // blocked.size(0)  # K rows per sentence in beam search
        output = self.output

        def restricted(x: Tensor) -> Tensor:  # the K rows of a sentence share its mask
            logits = output(x)  # [B*K, N], fresh: masked in place
            view = logits.view(blocked.size(0), per_row, -1)
            return view.masked_fill_(blocked.unsqueeze(1), float("-inf")).view_as(logits)

        prev = self.shortlist.vocab[prev_ids]
        return self.model.decoder.step(prev, state, enc, output=restricted)

    def reorder(self, state: Any, index: Tensor) -> Any:
        return self.model.decoder.reorder(state, index)


class Ensemble:
    """Several models decoding together: at each step the mean of their log-probabilities.

    Encoder outputs and decoder states are tuples with one entry per model. The attention
    returned is the mean of the members' attention (None if any member has none). The models
    must share the target vocabulary; `nmtkit.translate` checks that they share the tokenizers.
    """

    def __init__(self, models: Sequence[Seq2Seq], shortlist: Shortlist | None = None) -> None:
        if len(models) < 2:
            raise ValueError("an ensemble needs at least two models")
        self.members = [SingleModel(m, shortlist) for m in models]

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


def as_search_model(
    models: Seq2Seq | Sequence[Seq2Seq] | SearchModel, shortlist: Shortlist | None = None
) -> SearchModel:
    """A `Seq2Seq`, a list of them (an ensemble when more than one) or a ready SearchModel;
    with `shortlist`, searching over it (not for a ready SearchModel)."""
    if isinstance(models, Seq2Seq):
        return SingleModel(models, shortlist)
    if isinstance(models, Sequence):
        if len(models) == 1:
            return SingleModel(models[0], shortlist)
        return Ensemble(models, shortlist)
    if shortlist is not None:
        raise ValueError("a shortlist needs the Seq2Seq models, not a ready SearchModel")
    return models
