"""Batches: every example exactly once per epoch, budgets respected, resumable, padded right."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmtkit.data.batching import BatchSampler, collate, make_batches
from nmtkit.data.shards import Shard, ShardWriter
from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

lengths = st.lists(st.integers(0, 60), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(src=lengths, data=st.data(), budget=st.integers(1, 500), seed=st.integers(0, 99))
def test_every_example_once_per_epoch_within_budget(
    src: list[int], data: st.DataObject, budget: int, seed: int
) -> None:
    tgt = data.draw(st.lists(st.integers(0, 60), min_size=len(src), max_size=len(src)))
    batches = make_batches(
        np.array(src), np.array(tgt), batch_tokens=budget, rng=np.random.default_rng(seed)
    )
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(src)))
    for batch in batches:
        cost = len(batch) * (max(max(src[i], tgt[i]) for i in batch) + 1)
        assert cost <= budget or len(batch) == 1  # one over-long example still gets a batch


@settings(max_examples=30, deadline=None)
@given(src=lengths, cut=st.integers(0, 40), seed=st.integers(0, 9))
def test_resumed_stream_equals_uninterrupted(src: list[int], cut: int, seed: int) -> None:
    lens = np.array(src)
    whole = BatchSampler(lens, lens, batch_tokens=64, seed=seed)
    expected = [b.tolist() for b in itertools.islice(whole, cut + 25)]
    first = BatchSampler(lens, lens, batch_tokens=64, seed=seed)
    head = [b.tolist() for b in itertools.islice(first, cut)]
    resumed = BatchSampler(lens, lens, batch_tokens=64, seed=seed)
    resumed.load_state_dict(first.state_dict())
    assert head + [b.tolist() for b in itertools.islice(resumed, 25)] == expected


def test_epochs_differ_and_seed_reproduces() -> None:
    lens = np.arange(200) % 37
    a = BatchSampler(lens, lens, batch_tokens=100, seed=1)
    b = BatchSampler(lens, lens, batch_tokens=100, seed=1)
    assert [x.tolist() for x in a.epoch_batches(1)] == [x.tolist() for x in b.epoch_batches(1)]
    assert [x.tolist() for x in a.epoch_batches(1)] != [x.tolist() for x in a.epoch_batches(2)]


def test_batches_group_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 80, 2000)
    batches = make_batches(lens, lens, batch_tokens=800, rng=rng)
    padded = sum(len(b) * (lens[b].max() + 1) for b in batches)
    real = int((lens + 1).sum())
    assert real / padded > 0.9  # sorting keeps padding small


def test_collate_pads_and_adds_bos_eos(tmp_path: Path) -> None:
    seqs = [[5, 6, 7], [8], []]
    for side in ("src", "tgt"):
        with ShardWriter(tmp_path / side, np.dtype("<u2")) as w:
            w.add(seqs)
    src, tgt = Shard(tmp_path / "src", "<u2"), Shard(tmp_path / "tgt", "<u2")
    batch = collate(src, tgt, np.array([1, 0, 2]))
    assert batch.src.tolist() == [[8, EOS_ID, PAD_ID, PAD_ID], [5, 6, 7, EOS_ID], [EOS_ID, 0, 0, 0]]
    assert batch.src_lens.tolist() == [2, 4, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, 0, 0], [BOS_ID, 5, 6, 7], [BOS_ID, 0, 0, 0]]
    assert batch.tgt_out.tolist() == [[8, EOS_ID, 0, 0], [5, 6, 7, EOS_ID], [EOS_ID, 0, 0, 0]]
    assert batch.tgt_tokens == 7
    assert batch.indices.tolist() == [1, 0, 2]


def test_sampler_rejects_empty_or_mismatched() -> None:
    with pytest.raises(ValueError):
        BatchSampler(np.array([]), np.array([]), batch_tokens=10, seed=1)
    with pytest.raises(ValueError):
        BatchSampler(np.array([1, 2]), np.array([1]), batch_tokens=10, seed=1)
