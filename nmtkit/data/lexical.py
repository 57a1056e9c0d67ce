"""A lexical translation table over SentencePiece pieces, for vocabulary shortlists.

Learned once from the training pairs by IBM Model 1 (Brown et al. 1993): expectation-
maximisation of t(target piece | source piece), every target piece aligned to one source
piece or to NULL, starting from uniform probabilities. What is kept is, for every source piece,
its `TOP_K` most probable target pieces (best first) and the order of the target pieces by
frequency. Decoding with a shortlist (`--shortlist`) lets each sentence produce only the
top-k candidates of its source pieces, the N most frequent target pieces and the special ids
(`LexicalTable.shortlist`); the output layer of a batch computes the union of its sentences'
shortlists (`batch_shortlist`).

The EM runs on flat arrays of (sentence position, source piece, target piece) links, one per
co-occurrence, so it is a few numpy passes per iteration; at most `MAX_LINKS` links are used
(the first sentences of a shuffled order), which bounds time and memory on large corpora.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nmtkit.data.tokenizer import SPECIAL_PIECES
from nmtkit.recipe import SHORTLIST_TOP_K

TOP_K = SHORTLIST_TOP_K  # candidates kept per source piece (decoding uses the first k)
ITERATIONS = 5
MAX_LINKS = 20_000_000  # co-occurrences used for EM (about 1.5 GB of arrays at the peak)
NULL = 0  # the NULL source word's id (PAD: never a real piece)
SPECIALS = np.array(sorted(SPECIAL_PIECES), dtype=np.int64)  # pad, unk, bos, eos: 0..3


@dataclass(frozen=True)
class LexicalTable:
    """candidates [V_src, K]: target ids by t(t|s), best first (-1 where a source piece has
    fewer than K); frequent [V_tgt]: target ids, most frequent first."""

    candidates: np.ndarray
    frequent: np.ndarray

    def shortlist(self, source_ids: Iterable[int], top_k: int, frequent: int) -> np.ndarray:
        """The sorted target ids a batch may produce: the special ids (0..3, so each keeps its
        own position), the first `top_k` candidates of every source piece in `source_ids`,
        and the `frequent` most frequent target pieces."""
        sources = np.unique(np.fromiter(source_ids, dtype=np.int64))
        sources = sources[(sources >= 0) & (sources < len(self.candidates))]
        parts = [SPECIALS, self.frequent[:frequent], self.candidates[sources, :top_k].ravel()]
        ids = np.unique(np.concatenate([p.astype(np.int64) for p in parts]))
        return ids[ids >= 0]

    def batch_shortlist(
        self, sources: Sequence[Sequence[int]], top_k: int, frequent: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each sentence's shortlist, for one batch: (vocab [N], the sorted union of the
        sentences' shortlists; allowed [B, N] bool, True where vocab[n] is in sentence b's)."""
        lists = [self.shortlist(ids, top_k, frequent) for ids in sources]
        vocab = np.unique(np.concatenate([SPECIALS, *lists]))
        allowed = np.zeros((len(lists), len(vocab)), dtype=bool)
        for row, ids in enumerate(lists):
            allowed[row, np.searchsorted(vocab, ids)] = True
        return vocab, allowed

    @property
    def src_vocab_size(self) -> int:
        return len(self.candidates)

    @property
    def tgt_vocab_size(self) -> int:
        return len(self.frequent)


def learn_lexical_table(
    sources: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    src_vocab_size: int,
    tgt_vocab_size: int,
    *,
    top_k: int = TOP_K,
    iterations: int = ITERATIONS,
    max_links: int = MAX_LINKS,
    seed: int = 0,
) -> LexicalTable:
    """IBM Model 1 on id sequences (without EOS): sources[i] translates to targets[i]."""
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    frequent = _by_frequency(targets, tgt_vocab_size)
    order = np.random.default_rng(seed).permutation(len(sources))
    src_lens = np.array([len(sources[i]) + 1 for i in order], dtype=np.int64)  # + NULL
    tgt_lens = np.array([len(targets[i]) for i in order], dtype=np.int64)
    keep = int(np.searchsorted(np.cumsum(src_lens * tgt_lens), max_links, side="right"))
    order, src_lens, tgt_lens = order[:keep], src_lens[:keep], tgt_lens[:keep]
    candidates = np.full((src_vocab_size, top_k), -1, dtype=np.int32)
    if not keep or not tgt_lens.sum():
        return LexicalTable(candidates, frequent)
    src = np.concatenate([np.concatenate([[NULL], sources[i]]) for i in order]).astype(np.int64)
    tgt = np.concatenate([targets[i] for i in order]).astype(np.int64)
    src_start = np.concatenate([[0], np.cumsum(src_lens)[:-1]])
    # One link per (target position, source position) of each sentence: `group` numbers the
    # target positions (the alignment of each is a distribution over its sentence's sources).
    links_per_target = np.repeat(src_lens, tgt_lens)  # [total target positions]
    group = np.repeat(np.arange(len(tgt)), links_per_target)
    offset = np.arange(len(group)) - np.repeat(np.cumsum(links_per_target) - links_per_target,
                                               links_per_target)  # fmt: skip
    sentence_of_target = np.repeat(np.arange(len(order)), tgt_lens)
    src_of_link = src[np.repeat(src_start[sentence_of_target], links_per_target) + offset]
    codes = src_of_link * tgt_vocab_size + tgt[group]
    del offset, src_of_link
    pairs, param = np.unique(codes, return_inverse=True)
    del codes
    pair_src = pairs // tgt_vocab_size
    prob = np.ones(len(pairs))  # t(t|s) up to normalisation: uniform
    for _ in range(iterations):
        weight = prob[param]
        posterior = weight / np.bincount(group, weight, minlength=len(tgt))[group]
        counts = np.bincount(param, posterior, minlength=len(pairs))
        prob = counts / np.bincount(pair_src, counts, minlength=src_vocab_size)[pair_src]
    # Best first within each source piece: sort by (source, -probability).
    ranked = np.lexsort((-prob, pair_src))
    ranked_src = pair_src[ranked]
    first = np.searchsorted(ranked_src, ranked_src, side="left")
    rank = np.arange(len(ranked)) - first
    kept = rank < top_k
    candidates[ranked_src[kept], rank[kept]] = (pairs[ranked] % tgt_vocab_size)[kept]
    return LexicalTable(candidates, frequent)


def _by_frequency(targets: Sequence[np.ndarray], vocab_size: int) -> np.ndarray:
    """Target ids, most frequent first (ties: lower id first); unseen ids last."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    if len(targets):
        flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets])
        counts = np.bincount(flat, minlength=vocab_size)[:vocab_size]
    return np.argsort(-counts, kind="stable").astype(np.int32)
