"""Beam search against a stub model with hand-made log-probabilities (no network).

The stub implements the search interface (`nmtkit.search.model`): its decoder state is the
token history of each row, and `step` looks the next-token distribution up from a table keyed
by (sentence, prefix), or draws it from a seeded generator for exhaustive comparisons.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from nmtkit.data.tokenizer import BOS_ID, EOS_ID
from nmtkit.models.decoder import StepOutput
from nmtkit.search.beam import beam_search
from nmtkit.search.greedy import greedy_search
from nmtkit.search.hypothesis import Hypothesis, length_penalty, max_lengths

A, B, C = 4, 5, 6  # three ordinary target tokens; 0-3 are pad, unk, bos, eos
VOCAB = 7

Table = Callable[[int, tuple[int, ...]], dict[int, float]]


class StubModel:
    """Search interface over a probability table: table(sentence, prefix) -> {token: prob}.

    Sentence identity travels in src[:, 0]; tokens missing from the table get probability 0.
    The attention it returns is uniform over the sentence's source positions.
    """

    def __init__(self, table: Table, *, strict: bool = True) -> None:
        self.table = table
        self.strict = strict  # beam search never extends a finished beam; greedy may (masked)
        self.steps = 0
        self.rows_seen: list[int] = []

    def encode(self, src: Tensor, src_lens: Tensor) -> tuple[Tensor, Tensor]:
        return src[:, 0].clone(), src_lens.clone()

    def select(self, enc: tuple[Tensor, Tensor], index: Tensor) -> tuple[Tensor, Tensor]:
        return enc[0][index], enc[1][index]

    def init_state(self, enc: tuple[Tensor, Tensor]) -> Tensor:
        return torch.zeros((enc[0].size(0), 0), dtype=torch.long)

    def step(self, prev_ids: Tensor, state: Tensor, enc: tuple[Tensor, Tensor]) -> StepOutput:
        self.steps += 1
        self.rows_seen.append(prev_ids.size(0))
        history = torch.cat([state, prev_ids.unsqueeze(1)], dim=1)
        log_probs = torch.full((history.size(0), VOCAB), float("-inf"))
        # K rows per encoder row (beam search's beams of one sentence are consecutive rows)
        group = history.size(0) // enc[0].size(0)
        assert group * enc[0].size(0) == history.size(0)
        sentences, src_len = enc[0].repeat_interleave(group), enc[1].repeat_interleave(group)
        for row, (sentence, tokens) in enumerate(
            zip(sentences.tolist(), history.tolist(), strict=True)
        ):
            assert tokens[0] == BOS_ID
            if EOS_ID in tokens:
                assert not self.strict, "a finished beam was extended"
                continue
            for token, p in self.table(sentence, tuple(tokens[1:])).items():
                log_probs[row, token] = math.log(p)
        positions = torch.arange(int(src_len.max()))
        attn = (positions < src_len.unsqueeze(1)).float() / src_len.unsqueeze(1)
        return StepOutput(log_probs, history, attn)

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        return state[index]


def sources(*lengths: int) -> tuple[Tensor, Tensor]:
    """A batch whose sentence i is identified by src[i, 0] = i (lengths >= 1)."""
    src = torch.zeros((len(lengths), max(lengths)), dtype=torch.long)
    src[:, 0] = torch.arange(len(lengths))
    return src, torch.tensor(lengths)


def fixed(entries: dict[tuple[int, ...], dict[int, float]]) -> Table:
    """The same table for every sentence; an unlisted prefix ends for sure."""
    return lambda sentence, prefix: entries.get(prefix, {EOS_ID: 1.0})


# Greedy takes A, C, C, EOS (0.6 ** 3 = 0.216); beam 2 finds B EOS (0.4 * 0.9 = 0.36).
GARDEN_PATH = fixed(
    {
        (): {A: 0.6, B: 0.4},
        (A,): {C: 0.6, EOS_ID: 0.4},
        (A, C): {EOS_ID: 0.4, C: 0.6},
        (A, C, C): {EOS_ID: 1.0},
        (B,): {EOS_ID: 0.9, A: 0.1},
    }
)


def run(table: Table, *lengths: int, **options) -> list[list[Hypothesis]]:
    src, src_lens = sources(*lengths)
    options = {"beam_size": 2, "alpha": 0.0, "max_len_ratio": 2.0, **options}
    return beam_search(StubModel(table), src, src_lens, **options)


def test_beam_finds_the_more_probable_output_that_greedy_misses() -> None:
    src, src_lens = sources(3)
    assert greedy_search(
        StubModel(GARDEN_PATH, strict=False), src, src_lens, max_len_ratio=2.0
    ) == [[A, C, C]]
    [[best]] = run(GARDEN_PATH, 3, beam_size=2)
    assert best.tokens == [B]
    assert best.log_prob == pytest.approx(math.log(0.4 * 0.9))
    [[one]] = run(GARDEN_PATH, 3, beam_size=1)
    assert one.tokens == [A, C, C]


def test_nbest_is_distinct_sorted_and_scored_by_the_table() -> None:
    [hyps] = run(GARDEN_PATH, 3, beam_size=3, nbest=3)
    # Three finished after two steps: A-C-C (0.216) is never reached by a beam of 3.
    assert [h.tokens for h in hyps] == [[B], [A], [A, C]]
    assert [h.log_prob for h in hyps] == pytest.approx(
        [math.log(0.36), math.log(0.24), math.log(0.6 * 0.6 * 0.4)]
    )
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_length_penalty_prefers_the_longer_output_when_alpha_is_high() -> None:
    table = fixed({(): {A: 0.5, EOS_ID: 0.5}, (A,): {B: 0.9, EOS_ID: 0.1}, (A, B): {EOS_ID: 1.0}})
    [[short]] = run(table, 3, beam_size=3, alpha=0.0)
    [[long]] = run(table, 3, beam_size=3, alpha=2.0)
    assert short.tokens == [] and long.tokens == [A, B]
    assert long.score == pytest.approx(math.log(0.45) / length_penalty(3, 2.0))
    assert length_penalty(3, 2.0) == pytest.approx((8 / 6) ** 2)
    assert length_penalty(7, 0.0) == 1.0


def test_maximum_length_forces_eos_and_counts_its_probability() -> None:
    def never_ends(sentence: int, prefix: tuple[int, ...]) -> dict[int, float]:
        return {A: 0.9, EOS_ID: 0.1}

    src, src_lens = sources(1, 4)
    limits = max_lengths(src_lens, 1.0).tolist()  # [6, 9] tokens, EOS included
    hyps = beam_search(
        StubModel(never_ends), src, src_lens, beam_size=1, alpha=0.0, max_len_ratio=1.0
    )
    for [hyp], limit in zip(hyps, limits, strict=True):
        assert hyp.tokens == [A] * (limit - 1)
        assert hyp.log_prob == pytest.approx((limit - 1) * math.log(0.9) + math.log(0.1))
    assert greedy_search(StubModel(never_ends, strict=False), src, src_lens, max_len_ratio=1.0) == [
        h[0].tokens for h in hyps
    ]


def test_finished_sentences_leave_the_batch() -> None:
    def table(sentence: int, prefix: tuple[int, ...]) -> dict[int, float]:
        if sentence == 0 or len(prefix) >= 6:
            return {EOS_ID: 1.0}
        return {A: 0.5, B: 0.5}

    stub = StubModel(table)
    src, src_lens = sources(3, 3)
    hyps = beam_search(stub, src, src_lens, beam_size=2, alpha=0.0, max_len_ratio=3.0)
    assert hyps[0][0].tokens == [] and len(hyps[1][0].tokens) == 6
    assert stub.rows_seen[0] == 4  # two sentences x two beams
    assert set(stub.rows_seen[1:]) == {2}  # sentence 0 ended after one step


def test_each_sentence_is_searched_as_if_alone() -> None:
    def table(sentence: int, prefix: tuple[int, ...]) -> dict[int, float]:
        return random_table(sentence, prefix) if len(prefix) < 4 else {EOS_ID: 1.0}

    together = run(table, 2, 5, 3, 1, beam_size=3, nbest=3, alpha=1.0)
    for i, length in enumerate((2, 5, 3, 1)):
        src, src_lens = sources(length)
        src[0, 0] = i
        alone = beam_search(StubModel(table), src, src_lens, beam_size=3, nbest=3, alpha=1.0)
        assert together[i] == alone[0]


def random_table(sentence: int, prefix: tuple[int, ...]) -> dict[int, float]:
    """A fixed random distribution over A, B and EOS for each (sentence, prefix)."""
    seed = sentence * 1000003 + sum((t + 1) * 7**i for i, t in enumerate(prefix))
    probs = torch.rand(3, generator=torch.Generator().manual_seed(seed)) + 0.05
    probs = (probs / probs.sum()).tolist()
    return dict(zip((A, B, EOS_ID), probs, strict=True))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_wide_enough_beam_is_exhaustive(alpha: float) -> None:
    src, src_lens = sources(1)
    limit = int(max_lengths(src_lens, 1.0))  # 6 tokens with EOS: 63 possible outputs
    outputs = []
    for length in range(limit):
        for tokens in itertools.product((A, B), repeat=length):
            log_prob = sum(
                math.log(random_table(0, tokens[:i])[tok]) for i, tok in enumerate(tokens)
            ) + math.log(random_table(0, tokens)[EOS_ID])
            outputs.append((log_prob / length_penalty(length + 1, alpha), list(tokens)))
    outputs.sort(reverse=True)
    hyps = beam_search(
        StubModel(random_table),
        src,
        src_lens,
        beam_size=96,
        nbest=5,
        alpha=alpha,
        max_len_ratio=1.0,
    )[0]
    assert [h.tokens for h in hyps] == [tokens for _, tokens in outputs[:5]]
    assert [h.score for h in hyps] == pytest.approx([score for score, _ in outputs[:5]])


def test_beam_one_equals_greedy_on_random_tables() -> None:
    lengths = (1, 2, 3, 4, 5, 6)
    src, src_lens = sources(*lengths)
    greedy = greedy_search(StubModel(random_table, strict=False), src, src_lens, max_len_ratio=1.5)
    beam = beam_search(StubModel(random_table), src, src_lens, beam_size=1, max_len_ratio=1.5)
    assert [h[0].tokens for h in beam] == greedy


def test_attention_rows_follow_the_hypothesis() -> None:
    [[hyp]] = run(GARDEN_PATH, 3, beam_size=2, attention=True)
    assert hyp.attention is not None
    assert hyp.attention.shape == (len(hyp.tokens) + 1, 3)
    assert torch.allclose(hyp.attention.sum(-1), torch.ones(len(hyp.tokens) + 1))


def test_nbest_larger_than_the_beam_is_refused() -> None:
    with pytest.raises(ValueError, match="nbest"):
        run(GARDEN_PATH, 3, beam_size=2, nbest=3)
