"""Binary token store, memory-mapped: one per split and side, two files per store.

    <prefix>.bin   all token ids, concatenated without BOS/EOS, in `token_dtype(vocab)`
    <prefix>.idx   int64 offsets, one more than the sentences: sentence i is bin[idx[i]:idx[i+1]]

Writing streams chunk by chunk. Reading maps both files, so every training process shares the
page cache and nothing is copied per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

OFFSET_DTYPE = np.dtype("<i8")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id dtype that holds every id of the vocabulary."""
    return np.dtype("<u2") if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype("<i4")


class ShardWriter:
    """Append encoded sentences to `<prefix>.bin` / `<prefix>.idx`; a context manager that
    removes the partial files on an exception."""

    def __init__(self, prefix: Path, dtype: np.dtype) -> None:
        self.prefix = Path(prefix)
        self.dtype = np.dtype(dtype)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin = open(f"{self.prefix}.bin", "wb")  # noqa: SIM115 - closed in close()
        self._idx = open(f"{self.prefix}.idx", "wb")  # noqa: SIM115
        self._idx.write(np.zeros(1, OFFSET_DTYPE).tobytes())
        self.tokens = 0

    def add(self, sequences: Sequence[Sequence[int]]) -> None:
        """Append a chunk of sentences."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        total = int(lengths.sum())
        flat = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=total)
        if total and (flat.max() > np.iinfo(self.dtype).max or flat.min() < 0):
            raise ValueError(f"token id out of range for {self.dtype}")
        self._bin.write(flat.astype(self.dtype).tobytes())
        offsets = self.tokens + np.cumsum(lengths)
        self._idx.write(offsets.astype(OFFSET_DTYPE).tobytes())
        self.tokens += total

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._bin.close()
        self._idx.close()
        if exc_type is not None:
            for suffix in (".bin", ".idx"):
                Path(f"{self.prefix}{suffix}").unlink(missing_ok=True)


class Shard:
    """Read-only, memory-mapped view of one shard: `len`, `shard[i]` and `lengths`."""

    def __init__(self, prefix: Path, dtype: np.dtype | str) -> None:
        self.prefix = Path(prefix)
        self.offsets = np.memmap(f"{self.prefix}.idx", dtype=OFFSET_DTYPE, mode="r")
        bin_path = Path(f"{self.prefix}.bin")
        # np.memmap refuses empty files; an empty split is a valid, zero-length shard.
        if bin_path.stat().st_size == 0:
            self.tokens: np.ndarray = np.zeros(0, dtype=dtype)
        else:
            self.tokens = np.memmap(bin_path, dtype=dtype, mode="r")
        if len(self.offsets) == 0 or int(self.offsets[-1]) != len(self.tokens):
            raise ValueError(
                f"shard {self.prefix} is inconsistent: offsets end at "
                f"{int(self.offsets[-1]) if len(self.offsets) else 'nothing'}, "
                f"{len(self.tokens)} tokens stored"
            )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every sentence (int64)."""
        return np.diff(self.offsets)
