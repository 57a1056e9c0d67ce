"""The lexical table behind vocabulary shortlists (IBM Model 1 on pieces)."""

from __future__ import annotations

import numpy as np
import pytest

from nmtkit.data.lexical import TOP_K, LexicalTable, learn_lexical_table

SRC_V, TGT_V = 60, 80


def dictionary_corpus(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Word-for-word translations: source piece s becomes target piece s + 15, in a shuffled
    order, with an untranslated 'particle' (target 5) in half of the sentences."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(n):
        src = rng.integers(4, SRC_V, rng.integers(2, 9))
        tgt = rng.permutation(src + 15)
        if rng.random() < 0.5:
            tgt = np.concatenate([tgt, [5]])
        sources.append(src)
        targets.append(tgt)
    return sources, targets


def test_model_one_learns_a_dictionary() -> None:
    sources, targets = dictionary_corpus(2000)
    table = learn_lexical_table(sources, targets, SRC_V, TGT_V)
    assert table.candidates.shape == (SRC_V, TOP_K) and table.frequent.shape == (TGT_V,)
    seen = np.unique(np.concatenate(sources))
    assert (table.candidates[seen, 0] == seen + 15).mean() >= 0.95
    assert table.candidates[0, 0] == 5  # NULL (id 0) explains the untranslated particle
    assert (table.candidates[1:4] == -1).all()  # special pieces never occur in the data
    assert table.frequent[0] == 5  # the particle: in half of the sentences


def test_learning_is_deterministic_and_bounded() -> None:
    sources, targets = dictionary_corpus(500)
    a = learn_lexical_table(sources, targets, SRC_V, TGT_V, top_k=10)
    b = learn_lexical_table(sources, targets, SRC_V, TGT_V, top_k=10)
    assert (a.candidates == b.candidates).all() and (a.frequent == b.frequent).all()
    few = learn_lexical_table(sources, targets, SRC_V, TGT_V, top_k=10, max_links=300)
    assert few.candidates.shape == (SRC_V, 10)
    assert (few.candidates >= 0).sum() < (a.candidates >= 0).sum()  # fewer sentences used
    empty = learn_lexical_table([], [], SRC_V, TGT_V)
    assert (empty.candidates == -1).all()


@pytest.fixture(scope="module")
def table() -> LexicalTable:
    return learn_lexical_table(*dictionary_corpus(2000), SRC_V, TGT_V)


def test_a_shortlist_holds_what_the_table_predicts(table: LexicalTable) -> None:
    source = [7, 9, 9, 30]
    ids = table.shortlist(source, top_k=3, frequent=4)
    assert list(ids) == sorted(set(ids.tolist()))
    assert list(ids[:4]) == [0, 1, 2, 3]  # the special ids keep their positions
    for piece in source:
        assert set(table.candidates[piece, :3].tolist()) <= set(ids.tolist())
    assert set(table.frequent[:4].tolist()) <= set(ids.tolist())
    assert len(ids) <= 4 + 4 + 3 * 3
    assert {22, 24, 45} <= set(ids.tolist())  # the dictionary's translations


def test_a_batch_shortlist_is_the_union_with_each_sentence_marked(table: LexicalTable) -> None:
    sentences = [[7, 9], [30], [50, 51, 52]]
    vocab, allowed = table.batch_shortlist(sentences, top_k=2, frequent=3)
    assert allowed.shape == (3, len(vocab)) and list(vocab[:4]) == [0, 1, 2, 3]
    for row, source in zip(allowed, sentences, strict=True):
        assert vocab[row].tolist() == table.shortlist(source, 2, 3).tolist()
    union = set().union(*(table.shortlist(s, 2, 3).tolist() for s in sentences))
    assert set(vocab.tolist()) == union
