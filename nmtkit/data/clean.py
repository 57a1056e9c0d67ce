"""Cleaning rules applied to (src, tgt) pairs before tokenization, each counting what it drops.

Rules run in this order and a pair is counted under the first rule that drops it:

    empty      either side is empty (always on: an empty side cannot be learned or scored)
    too_short  either side has fewer than `min_len` words
    too_long   either side has more than `max_len` words
    ratio      the longer side has more than `max_ratio` times the words of the shorter
    duplicate  the same (src, tgt) pair was already kept (`dedup`)

Lengths are whitespace-separated words, so the rules do not depend on the tokenizer.
Only the splits listed in `clean.splits` (default: train) go through the length, ratio and
duplicate rules; valid and test keep every non-empty pair so their scores stay comparable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from nmtkit.recipe import CleanConfig

RULES = ("empty", "too_short", "too_long", "ratio", "duplicate")


@dataclass
class CleanStats:
    """Pairs read, dropped per rule, and kept, for one split."""

    read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    @property
    def kept(self) -> int:
        return self.read - sum(self.dropped.values())

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, **self.dropped, "kept": self.kept}


class PairFilter:
    """The cleaning rules for one split; `__call__` says which rule drops a pair, or None."""

    def __init__(self, cfg: CleanConfig, *, full: bool) -> None:
        self.cfg = cfg
        self.full = full  # False: only the `empty` rule (valid/test by default)
        # 8-byte digests, not the strings: memory per kept pair stays small on big corpora.
        self._seen: set[bytes] = set()

    def __call__(self, src: str, tgt: str) -> str | None:
        if not src or not tgt:
            return "empty"
        if not self.full:
            return None
        n_src, n_tgt = len(src.split()), len(tgt.split())
        if min(n_src, n_tgt) < self.cfg.min_len:
            return "too_short"
        if max(n_src, n_tgt) > self.cfg.max_len:
            return "too_long"
        if max(n_src, n_tgt) > self.cfg.max_ratio * min(n_src, n_tgt):
            return "ratio"
        if self.cfg.dedup:
            digest = hashlib.blake2b(
                f"{src}\t{tgt}".encode(), digest_size=8, usedforsecurity=False
            ).digest()
            if digest in self._seen:
                return "duplicate"
            self._seen.add(digest)
        return None


def clean_pairs(
    pairs: Iterable[tuple[str, str]], cfg: CleanConfig, *, split: str, stats: CleanStats
) -> Iterator[tuple[str, str]]:
    """Yield the pairs that pass the rules for `split`; count reads and drops in `stats`."""
    keep = PairFilter(cfg, full=split in cfg.splits)
    for src, tgt in pairs:
        stats.read += 1
        rule = keep(src, tgt)
        if rule is None:
            yield src, tgt
        else:
            stats.dropped[rule] += 1
