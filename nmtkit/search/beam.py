"""Batched beam search over (sentences x beams), using only the search interface.

All active sentences advance together: the decoder runs on A*K rows (A active sentences, K
beams each) per step, and a sentence leaves the computation as soon as it is done, so the batch
shrinks as the search goes on.

State, per step t (0-based; each hypothesis has t tokens after BOS):

    alive    list[int], A        original batch index of each active sentence
    enc      encoder output      A rows, one per active sentence: the decoder reads it once
                                 for the K beams of the sentence (its rows a*K .. a*K+K-1)
    state    decoder state       A*K rows, beam k of sentence a at row a*K + k
    cum      [A, K] fp32         summed log-probabilities of each live beam (-inf: no beam)
    history  [A*K, t] long       tokens of each live beam so far
    prev     [A*K] long          the last token of each beam (BOS at t = 0)
    attn     [A*K, t, S] fp32    attention rows of each beam (only when asked for)

One step: the decoder scores every next token of every beam; of the K*V extensions of a
sentence the best 2K are kept. Those among the best K that end in EOS are finished hypotheses
(scored with the GNMT length penalty); the best K that do not end in EOS are the next beams
(there are always K: each beam contributes at most one EOS). A sentence is done when it has K
finished hypotheses or no live beam. At its maximum length only EOS is allowed, so every live
beam finishes there. With K = 1 this is exactly greedy search.

Scores: `log_prob` is the model's log-probability of the output, EOS included;
`score = log_prob / lp(len)` with lp(len) = ((5 + len) / 6) ** alpha (Wu et al. 2016), len
counting the EOS. Hypotheses are ranked by `score`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    batch, k = src.size(0), beam_size
    device = src.device
    limits = max_lengths(src_lens, max_len_ratio).tolist()
    lengths = src_lens.tolist()

    enc = search.encode(src, src_lens)  # not repeated per beam: see the module docstring
    state = search.reorder(
        search.init_state(enc), torch.arange(batch, device=device).repeat_interleave(k)
    )
    alive = list(range(batch))  # original index of the sentence at each position
    cum = torch.full((batch, k), float("-inf"), device=device)
    cum[:, 0] = 0.0
    history = torch.zeros((batch * k, 0), dtype=torch.long, device=device)
    prev = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    attn_history: Tensor | None = None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    live = [True] * batch  # per position of `alive`: False once the sentence is done
    t = 0
    while True:
        n = len(alive)
        log_probs, state, attn = search.step(prev, state, enc)  # [n*K, V], ..., [n*K, S]
        if attention and attn is not None:
            step_attn = attn.float().unsqueeze(1)  # [n*K, 1, S]
            attn_history = (
                step_attn if attn_history is None else torch.cat([attn_history, step_attn], dim=1)
            )
        log_probs = _force_eos_at_limit(log_probs, [limits[i] <= t + 1 for i in alive], k)
        vocab = log_probs.size(-1)
        cand = (cum.unsqueeze(-1) + log_probs.view(n, k, vocab)).view(n, k * vocab)
        top_scores, top_idx = cand.topk(min(2 * k, k * vocab), dim=-1)  # [n, 2K], best first
        top_beam, top_tok = top_idx // vocab, top_idx % vocab
        is_eos = (top_tok == EOS_ID) & torch.isfinite(top_scores)

        # Finished hypotheses: EOS among the best K extensions of each sentence.
        ends = is_eos[:, :k].nonzero()  # [F, 2] (sentence position, candidate)
        if ends.numel():
            _finish(
                finished,
                [alive[a] for a in ends[:, 0].tolist()],
                rows=ends[:, 0] * k + top_beam[ends[:, 0], ends[:, 1]],
                scores=top_scores[ends[:, 0], ends[:, 1]],
                history=history,
                attn_history=attn_history,
                src_lengths=lengths,
                penalty=length_penalty(t + 1, alpha),
            )

        # The next beams: the best K extensions that do not end in EOS.
        next_scores, pos = top_scores.masked_fill(is_eos, float("-inf")).topk(k, dim=-1)
        next_beam, next_tok = top_beam.gather(1, pos), top_tok.gather(1, pos)  # [n, K]
        no_beam = (~torch.isfinite(next_scores[:, 0])).tolist()
        live = [live[a] and not no_beam[a] and len(finished[alive[a]]) < k for a in range(n)]
        if not any(live):
            break
        if live.count(False) >= COMPACT_AT * n:  # drop done sentences from the computation
            keep = [a for a in range(n) if live[a]]
            alive, live = [alive[a] for a in keep], [True] * len(keep)
            kept = torch.tensor(keep, dtype=torch.long, device=device)
            next_scores, next_beam, next_tok = next_scores[kept], next_beam[kept], next_tok[kept]
            rows = (kept.unsqueeze(1) * k + next_beam).view(-1)
            enc = search.select(enc, kept)
        else:  # done sentences ride along, without beams, until enough of them are done
            rows = (torch.arange(n, device=device).unsqueeze(1) * k + next_beam).view(-1)
            if not all(live):
                done = torch.tensor([not x for x in live], device=device)
                next_scores = next_scores.masked_fill(done.unsqueeze(1), float("-inf"))
        dead = ~torch.isfinite(next_scores)  # no beam: early steps (< K extensions), done
        next_tok = next_tok.masked_fill(dead, PAD_ID)  # never EOS: a dead beam is not finished
        state = search.reorder(state, rows)
        history = torch.cat([history[rows], next_tok.view(-1, 1)], dim=1)
        if attn_history is not None:
            attn_history = attn_history[rows]
        cum = next_scores
        prev = next_tok.view(-1)
        t += 1

    return [_best(hyps, nbest) for hyps in finished]


def _finish(
    finished: list[list[Hypothesis]],
    sentences: list[int],
    *,
    rows: Tensor,
    scores: Tensor,
    history: Tensor,
    attn_history: Tensor | None,
    src_lengths: list[int],
    penalty: float,
) -> None:
    """Record the beams `rows` [F] (of `sentences`) that chose EOS with total `scores` [F]."""
    tokens = history[rows].tolist()
    for sentence, row, score, ids in zip(
        sentences, rows.tolist(), scores.tolist(), tokens, strict=True
    ):
        matrix = None
        if attn_history is not None:
            matrix = attn_history[row, :, : src_lengths[sentence]].cpu()  # [t+1, S_i]
        finished[sentence].append(
            Hypothesis(tokens=ids, score=score / penalty, log_prob=score, attention=matrix)
        )


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
