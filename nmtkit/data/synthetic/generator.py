"""Deterministic English->German parallel corpus from a small hand-written grammar.

Each pair is one abstract sentence tree (clauses, noun phrases, prepositional phrases over the
entries of `nmtkit.data.synthetic.lexicon`) rendered twice, with English and with German word
order and morphology, so both sides always say the same thing. This module draws each pair's
length and splits the pairs; random trees are grown in `nmtkit.data.synthetic.builder`, the tree
classes are in `.trees`, their rendering and the constructions covered in `.grammar`,
inflection in `.morphology`.

Length control
    Each pair draws a target English length from a log-normal distribution (median about 13
    words, tail past 70), starts from one minimal clause and applies random growth steps
    (adjective, noun modifier, relative clause, adverb, adjunct, subordinate clause, coordinated
    clause, coordinated noun) until the English side is that long. Clause nesting is capped at
    MAX_LEVEL (in `.builder`), so long sentences come from more clauses rather than unbounded
    recursion.

Extending the lexicon
    Add rows to the tables in `lexicon.json` next to `nmtkit.data.synthetic.lexicon` (each
    table names its columns); nouns carry a kind and place tags, verbs the kinds they accept, so
    new words only appear where they fit. Bump GENERATOR_VERSION whenever the output changes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from nmtkit.data.synthetic.builder import Builder
from nmtkit.data.synthetic.grammar import render_sentence

__all__ = ["GENERATOR_VERSION", "generate_pair", "iter_synthetic"]

GENERATOR_VERSION = 1
SPLITS = ("train", "valid", "test")
TARGET_MEDIAN, TARGET_SIGMA, TARGET_MIN, TARGET_MAX = 13.0, 0.7, 4, 100


def generate_pair(rng: random.Random) -> tuple[str, str]:
    """One sentence pair drawn with the given RNG."""
    target = round(rng.lognormvariate(math.log(TARGET_MEDIAN), TARGET_SIGMA))
    target = min(max(target, TARGET_MIN), TARGET_MAX)
    return render_sentence(Builder(rng, target).build())


def iter_synthetic(
    split: str, *, pairs: int, valid: int, test: int, seed: int
) -> Iterator[tuple[str, str]]:
    """Yield (english, german) pairs of one split: 'train' yields `pairs` pairs, 'valid' `valid`,
    'test' `test`.

    Same arguments -> byte-identical stream. Each split has its own RNG seeded from the string
    "{seed}:{split}"; valid and test never repeat a source sentence, test skips valid's sources
    and train skips both, so train regenerates the (small) held-out splits first.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    for label, count in (("pairs", pairs), ("valid", valid), ("test", test)):
        if count < 0:
            raise ValueError(f"{label} must be >= 0, got {count}")
    return _iter_split(split, pairs, valid, test, seed)


def _iter_split(
    split: str, pairs: int, valid: int, test: int, seed: int
) -> Iterator[tuple[str, str]]:
    taken: set[str] = set()  # membership tests only: never iterated, so hash order cannot leak
    counts = {"valid": valid, "test": test, "train": pairs}
    for name in ("valid", "test", "train"):
        unique = name != "train"  # train may repeat itself (a later dedup step handles it)
        for pair in _draw(random.Random(f"{seed}:{name}"), counts[name], taken, unique):
            if name == split:
                yield pair
        if name == split:
            return


def _draw(
    rng: random.Random, count: int, taken: set[str], unique: bool
) -> Iterator[tuple[str, str]]:
    """`count` pairs whose source is not in `taken`; unique ones are added to it."""
    made = 0
    while made < count:
        src, tgt = generate_pair(rng)
        if src in taken:
            continue
        if unique:
            taken.add(src)
        made += 1
        yield src, tgt
