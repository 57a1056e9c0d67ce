"""Each cleaning rule drops exactly what it should and counts it under its own name."""

from __future__ import annotations

import pytest

from nmtkit.data.clean import RULES, CleanStats, clean_pairs
from nmtkit.recipe import CleanConfig

CFG = CleanConfig(min_len=2, max_len=6, max_ratio=2.0, dedup=True)

# (pair, rule that drops it or None), one row per rule and its edges
CASES = [
    (("a b", "x y"), None),
    (("", "x y"), "empty"),
    (("a b", ""), "empty"),
    (("a", "x y"), "too_short"),
    (("a b c d e f", "u v w x y z"), None),  # exactly max_len: kept
    (("a b c d e f g", "u v w x y z"), "too_long"),
    (("a b", "w x y z"), None),  # ratio exactly 2.0: kept
    (("a b", "v w x y z"), "ratio"),
    (("a b", "x y"), "duplicate"),
    (("a b", "x z"), None),  # same source, other target: not a duplicate
]


def test_each_rule_counts_its_drops() -> None:
    stats = CleanStats()
    kept = list(clean_pairs([pair for pair, _ in CASES], CFG, split="train", stats=stats))
    assert kept == [pair for pair, rule in CASES if rule is None]
    expected = {rule: sum(1 for _, r in CASES if r == rule) for rule in RULES}
    assert stats.dropped == expected
    assert stats.read == len(CASES)
    assert stats.kept == len(kept)
    assert stats.as_dict()["kept"] == len(kept)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_evaluation_splits_only_lose_empty_pairs_by_default(split: str) -> None:
    stats = CleanStats()
    kept = list(clean_pairs([pair for pair, _ in CASES], CFG, split=split, stats=stats))
    assert kept == [pair for pair, rule in CASES if rule != "empty"]
    assert stats.dropped["empty"] == 2
    assert sum(stats.dropped.values()) == 2


def test_rules_apply_to_listed_splits() -> None:
    cfg = CFG.model_copy(update={"splits": ["train", "valid"]})
    stats = CleanStats()
    list(clean_pairs([pair for pair, _ in CASES], cfg, split="valid", stats=stats))
    assert stats.dropped["too_long"] == 1


def test_dedup_off_keeps_duplicates() -> None:
    cfg = CFG.model_copy(update={"dedup": False})
    stats = CleanStats()
    kept = list(clean_pairs([("a b", "x y")] * 3, cfg, split="train", stats=stats))
    assert len(kept) == 3 and stats.dropped["duplicate"] == 0
