"""Batched beam search over (sentences x beams), using only the search interface.

All active sentences advance together: the decoder runs on A*K rows (A active sentences, K
beams each) per step, reading one encoder row per sentence for its K beams, and a sentence
leaves the computation once it is done, so the batch shrinks as the search goes on. `_Beams`
holds the state between steps.

One step: the decoder scores every next token of every beam; of the K*V extensions of a
sentence the best 2K are kept. Those among the best K that end in EOS are finished hypotheses;
the best K that do not end in EOS are the next beams (there are always K: each beam contributes
at most one EOS). A sentence is done when it has K finished hypotheses or no live beam. At its
maximum length only EOS is allowed, so every live beam finishes there. With K = 1 this is
exactly greedy search. Hypotheses are ranked by `score` = `log_prob` / `length_penalty(len)`,
len counting the EOS (`nmtkit.search.hypothesis`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmtkit.models import Seq2Seq
from nmtkit.search.hypothesis import Hypothesis, length_penalty, max_lengths
from nmtkit.search.model import SearchModel, as_search_model

# Done sentences leave the batch once they are this fraction of it: compacting copies the
# encoder output (sentences x source length x hidden), so it should not happen at every step.
COMPACT_AT = 0.25


@torch.no_grad()
def beam_search(
    model: Seq2Seq | Sequence[Seq2Seq] | SearchModel,
    src: Tensor,
    src_lens: Tensor,
    *,
    beam_size: int,
    alpha: float = 1.0,
    max_len_ratio: float = 2.0,
    nbest: int = 1,
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """The `nbest` best hypotheses of each source sentence, best first.

    src [B, S] (EOS-terminated, padded), src_lens [B]. `attention` keeps each hypothesis's
    attention matrix (costs memory and time; off by default).
    """
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be between 1 and the beam size {beam_size}, got {nbest}")
    search = as_search_model(model)
    k = beam_size
    limits, lengths = max_lengths(src_lens, max_len_ratio).tolist(), src_lens.tolist()
    beams = _start(search, src, src_lens, k)
    finished: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]

    for t in itertools.count():
        at_limit = [limits[i] <= t + 1 for i in beams.alive]
        cands = _extend(search, beams, at_limit, k, attention=attention)
        _finish_eos(finished, beams, cands, k, lengths, length_penalty(t + 1, alpha))
        # a stable sort of the 2K keeps equal scores in candidate order (see `_extend`)
        scores, pos = cands.scores.masked_fill(cands.is_eos, float("-inf")).sort(
            dim=-1, descending=True, stable=True
        )
        scores, pos = scores[:, :k], pos[:, :k]
        nxt = _Next(scores, cands.beam.gather(1, pos), cands.token.gather(1, pos))  # [A, K]
        no_beam = (~torch.isfinite(nxt.scores[:, 0])).tolist()
        per = zip(beams.alive, beams.live, no_beam, strict=True)  # per active sentence
        beams.live = [was and not gone and len(finished[i]) < k for i, was, gone in per]
        if not any(beams.live):
            break
        _advance(search, beams, nxt, k)

    return [_best(hyps, nbest) for hyps in finished]


@dataclass
class _Beams:
    """The search state between steps t and t+1 (t tokens after BOS so far)."""

    alive: list[int]  # A: original batch index of each active sentence
    live: list[bool]  # A: False once the sentence is done (it may still ride along, beamless)
    enc: Any  # encoder output, A rows: one per sentence, read by its K beams
    state: Any  # decoder state, A*K rows: beam k of sentence a at row a*K + k
    cum: Tensor  # [A, K] fp32: summed log-probabilities of each live beam (-inf: no beam)
    history: Tensor  # [A*K, t] long: tokens of each live beam so far
    prev: Tensor  # [A*K] long: the last token of each beam (BOS at t = 0)
    attn: Tensor | None  # [A*K, t, S] fp32: attention rows of each beam (when asked for)


class _Candidates(NamedTuple):
    """The best 2K extensions of each of the A active sentences, best first."""

    scores: Tensor  # [A, 2K] fp32: summed log-probabilities, EOS included
    beam: Tensor  # [A, 2K] long: the beam (0 .. K-1) each extends
    token: Tensor  # [A, 2K] long: the token each appends
    is_eos: Tensor  # [A, 2K] bool: appends EOS (and is a real extension, not -inf)


class _Next(NamedTuple):
    """The K next beams of each sentence: the best extensions that do not end in EOS."""

    scores: Tensor  # [A, K] fp32 (-inf: no beam)
    beam: Tensor  # [A, K] long: the beam each extends
    token: Tensor  # [A, K] long: the token each appends


def _start(search: SearchModel, src: Tensor, src_lens: Tensor, k: int) -> _Beams:
    """The state before the first step: one live beam (BOS) per sentence, t = 0."""
    batch, device = src.size(0), src.device
    enc = search.encode(src, src_lens)
    rows = torch.arange(batch, device=device).repeat_interleave(k)
    cum = torch.full((batch, k), float("-inf"), device=device)
    cum[:, 0] = 0.0
    return _Beams(
        alive=list(range(batch)),
        live=[True] * batch,
        enc=enc,
        state=search.reorder(search.init_state(enc), rows),
        cum=cum,
        history=torch.zeros((batch * k, 0), dtype=torch.long, device=device),
        prev=torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device),
        attn=None,
    )


def _extend(
    search: SearchModel, beams: _Beams, at_limit: list[bool], k: int, *, attention: bool
) -> _Candidates:
    """Run the decoder one step (updating `beams.state` and `beams.attn` to t+1 columns) and
    keep the best 2K of the K*V extensions of each sentence."""
    n = len(beams.alive)
    log_probs, beams.state, attn = search.step(beams.prev, beams.state, beams.enc)
    # log_probs [n*K, V], attn [n*K, S]
    if attention and attn is not None:
        step_attn = attn.float().unsqueeze(1)  # [n*K, 1, S]
        beams.attn = step_attn if beams.attn is None else torch.cat([beams.attn, step_attn], dim=1)
    log_probs = _force_eos_at_limit(log_probs, at_limit, k)
    vocab = log_probs.size(-1)
    cand = (beams.cum.unsqueeze(-1) + log_probs.view(n, k, vocab)).view(n, k * vocab)
    top_scores, top_idx = cand.topk(min(2 * k, k * vocab), dim=-1)  # [n, 2K], best first
    # topk leaves the order of equal scores unspecified (and CPU and CUDA differ); put equal
    # ones in index order, lowest first, as argmax does, so that ties (frequent with bf16
    # logits) break the same way in beam search and greedy search, on any device
    top_idx, order = top_idx.sort(dim=-1)
    top_scores, order = top_scores.gather(1, order).sort(dim=-1, descending=True, stable=True)
    top_idx = top_idx.gather(1, order)
    top_beam, top_tok = top_idx // vocab, top_idx % vocab
    is_eos = (top_tok == EOS_ID) & torch.isfinite(top_scores)
    return _Candidates(top_scores, top_beam, top_tok, is_eos)


def _finish_eos(
    finished: list[list[Hypothesis]],
    beams: _Beams,
    cands: _Candidates,
    k: int,
    src_lengths: list[int],
    penalty: float,
) -> None:
    """Record the EOS extensions among the best K of each sentence as finished hypotheses."""
    ends = cands.is_eos[:, :k].nonzero()  # [F, 2] (sentence position, candidate)
    if not ends.numel():
        return
    rows = ends[:, 0] * k + cands.beam[ends[:, 0], ends[:, 1]]  # [F]: the beams that end
    scores = cands.scores[ends[:, 0], ends[:, 1]]  # [F]
    sentences = [beams.alive[a] for a in ends[:, 0].tolist()]
    tokens, attn = beams.history[rows].tolist(), beams.attn
    for sentence, row, score, ids in zip(
        sentences, rows.tolist(), scores.tolist(), tokens, strict=True
    ):
        # [t+1, S_i]: one row per output token, EOS included
        matrix = None if attn is None else attn[row, :, : src_lengths[sentence]].cpu()
        finished[sentence].append(
            Hypothesis(tokens=ids, score=score / penalty, log_prob=score, attention=matrix)
        )


def _advance(search: SearchModel, beams: _Beams, nxt: _Next, k: int) -> None:
    """Move `beams` to the next step: the K beams `nxt` of each sentence. Done sentences leave
    the batch once they are COMPACT_AT of it; until then they ride along without beams."""
    n, live, device = len(beams.alive), beams.live, nxt.scores.device
    next_scores, next_beam, next_tok = nxt
    if live.count(False) >= COMPACT_AT * n:
        keep = [a for a in range(n) if live[a]]
        beams.alive, beams.live = [beams.alive[a] for a in keep], [True] * len(keep)
        kept = torch.tensor(keep, dtype=torch.long, device=device)
        next_scores, next_beam, next_tok = next_scores[kept], next_beam[kept], next_tok[kept]
        beams.enc = search.select(beams.enc, kept)
    else:
        kept = torch.arange(n, device=device)
        if not all(live):
            done = torch.tensor([not x for x in live], device=device)
            next_scores = next_scores.masked_fill(done.unsqueeze(1), float("-inf"))
    rows = (kept.unsqueeze(1) * k + next_beam).view(-1)  # [A'*K]: the beams they extend
    dead = ~torch.isfinite(next_scores)  # no beam: early steps (< K extensions), done
    next_tok = next_tok.masked_fill(dead, PAD_ID)  # never EOS: a dead beam is not finished
    beams.state = search.reorder(beams.state, rows)
    beams.history = torch.cat([beams.history[rows], next_tok.view(-1, 1)], dim=1)
    if beams.attn is not None:
        beams.attn = beams.attn[rows]
    beams.cum, beams.prev = next_scores, next_tok.view(-1)


def _force_eos_at_limit(log_probs: Tensor, at_limit: list[bool], k: int) -> Tensor:
    """Rows of sentences at their maximum length may only end: every token but EOS is -inf."""
    if not any(at_limit):
        return log_probs
    rows = torch.tensor(at_limit, device=log_probs.device).repeat_interleave(k)  # [n*K]
    only_eos = torch.full_like(log_probs[0], float("-inf"))
    only_eos[EOS_ID] = 0.0
    return torch.where(rows.unsqueeze(1), log_probs + only_eos, log_probs)


def _best(hyps: list[Hypothesis], nbest: int) -> list[Hypothesis]:
    """The `nbest` highest-scoring hypotheses; an empty one if the search found none at all."""
    if not hyps:  # only when every extension had probability 0
        return [Hypothesis(tokens=[], score=float("-inf"), log_prob=float("-inf"))]
    return sorted(hyps, key=lambda h: h.score, reverse=True)[:nbest]
