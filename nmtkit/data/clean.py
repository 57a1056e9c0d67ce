"""Cleaning rules applied to (src, tgt) pairs before tokenization, each counting what it drops.

The rules are `RULES`, in order; a pair is counted under the first rule that drops it (their
meaning: README, "Cleaning"). Lengths are whitespace-separated words, so the rules do not depend
on the tokenizer. Only the splits in `clean.splits` (default: train) go through the length,
ratio and duplicate rules; valid and test keep every non-empty pair so their scores stay
comparable.
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


def clean_pairs(
    pairs: Iterable[tuple[str, str]], cfg: CleanConfig, *, split: str, stats: CleanStats
) -> Iterator[tuple[str, str]]:
    """Yield the pairs that pass the rules for `split`; count reads and drops in `stats`."""
    full = split in cfg.splits  # else only the `empty` rule (valid/test by default)
    seen: set[bytes] = set()  # 8-byte digests, not the strings: memory per kept pair stays small
    for src, tgt in pairs:
        stats.read += 1
        rule = _first_rule(src, tgt, cfg, full, seen)
        if rule is None:
            yield src, tgt
        else:
            stats.dropped[rule] += 1


def _first_rule(src: str, tgt: str, cfg: CleanConfig, full: bool, seen: set[bytes]) -> str | None:
    """The rule that drops the pair, or None; a kept pair's digest is added to `seen`."""
    if not src or not tgt:
        return "empty"
    if not full:
        return None
    n_src, n_tgt = len(src.split()), len(tgt.split())
    if min(n_src, n_tgt) < cfg.min_len:
        return "too_short"
    if max(n_src, n_tgt) > cfg.max_len:
        return "too_long"
    if max(n_src, n_tgt) > cfg.max_ratio * min(n_src, n_tgt):
        return "ratio"
    if cfg.dedup:
        pair = f"{src}\t{tgt}".encode()
        digest = hashlib.blake2b(pair, digest_size=8, usedforsecurity=False).digest()
        if digest in seen:
            return "duplicate"
        seen.add(digest)
    return None
