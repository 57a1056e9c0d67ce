"""Length buckets: sentences grouped by their length in words, for scores by sentence length.

Edges `e1 < e2 < ... < en` give n+1 buckets of whitespace-separated word counts:

    [10, 20, 30]  ->  "≤10" (0-10)   "11-20"   "21-30"   "31+"

Empty lines (0 words) fall in the first bucket. The edges follow the recipe's
`evaluate.buckets` rule (positive, strictly increasing), checked by the recipe's own model.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast, get_args

from pydantic import ValidationError

from nmtkit.errors import UserError
from nmtkit.recipe import EvaluateConfig, LengthBy

DEFAULT_EDGES: tuple[int, ...] = (10, 20, 30, 40, 50)


@dataclass(frozen=True)
class LengthBucket:
    """A range of sentence lengths in words, both ends included; `max_words` None is open."""

    label: str
    min_words: int
    max_words: int | None


def check_by(by: str) -> LengthBy:
    """`by` itself when it is one of `LengthBy` (`source` or `reference`), else a UserError."""
    choices = get_args(LengthBy)
    if by not in choices:
        names = " or ".join(repr(choice) for choice in choices)
        raise UserError(f"length buckets are by {names}, not {by!r}")
    return cast(LengthBy, by)


def check_edges(edges: Sequence[int]) -> tuple[int, ...]:
    """The edges as a tuple, or a UserError if they break the recipe's `evaluate.buckets` rule."""
    try:
        return tuple(EvaluateConfig(buckets=list(edges)).buckets)
    except ValidationError as exc:
        reasons = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
        raise UserError(f"bad length bucket edges {list(edges)}: {reasons}") from None


def parse_edges(text: str) -> tuple[int, ...]:
    """`"10,20,30"` -> (10, 20, 30), checked by `check_edges`."""
    try:
        edges = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"bad length bucket edges {text!r}: give increasing word counts separated by "
            "commas, e.g. 10,20,30,40,50"
        ) from None
    return check_edges(edges)


def make_buckets(edges: Sequence[int]) -> tuple[LengthBucket, ...]:
    """The n+1 buckets that n checked edges delimit, labelled `≤e1`, `e1+1-e2`, ..., `en+1+`."""
    edges = check_edges(edges)
    buckets = [LengthBucket(f"≤{edges[0]}", 0, edges[0])]
    for low, high in itertools.pairwise(edges):
        label = str(high) if high == low + 1 else f"{low + 1}-{high}"
        buckets.append(LengthBucket(label, low + 1, high))
    buckets.append(LengthBucket(f"{edges[-1] + 1}+", edges[-1] + 1, None))
    return tuple(buckets)


def bucket_index(edges: Sequence[int], words: int) -> int:
    """Which of `make_buckets(edges)` holds a sentence of `words` words."""
    return bisect.bisect_left(edges, words)


def word_count(text: str) -> int:
    """Length in whitespace-separated words, the unit of the classic length plots."""
    return len(text.split())
