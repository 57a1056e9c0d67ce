"""Binary token store: one flat integer array plus offsets per split and side, memory-mapped.

    <prefix>.bin   all token ids of the split, concatenated (uint16 if the vocabulary fits, else
                   int32), without BOS/EOS
    <prefix>.idx   int64 offsets, one more than the number of sentences: sentence i is
                   bin[idx[i]:idx[i+1]]

Writing streams chunk by chunk (memory does not grow with the corpus). Reading maps both files,
so every training process shares the page cache and nothing is copied per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

OFFSET_DTYPE = np.dtype("<i8")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id dtype that holds every id of the vocabulary."""
    return np.dtype("<u2") if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype("<i4")


class ShardWriter:
    """Append encoded sentences to `<prefix>.bin` / `<prefix>.idx`.

    Use as a context manager; on an exception the partial files are removed.
    """

    def __init__(self, prefix: Path, dtype: np.dtype) -> None:
        self.prefix = Path(prefix)
        self.dtype = np.dtype(dtype)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin = open(f"{self.prefix}.bin", "wb")  # noqa: SIM115 - closed in close()
        self._idx = open(f"{self.prefix}.idx", "wb")  # noqa: SIM115
        self._idx.write(np.zeros(1, OFFSET_DTYPE).tobytes())
        self.sentences = 0
        self.tokens = 0
        self.max_len = 0

    def add(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Append a chunk of sentences; returns their lengths."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        total = int(lengths.sum())
        flat = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=total)
        if total and (flat.max() > np.iinfo(self.dtype).max or flat.min() < 0):
            raise ValueError(f"token id out of range for {self.dtype}")
        self._bin.write(flat.astype(self.dtype).tobytes())
        offsets = self.tokens + np.cumsum(lengths)
        self._idx.write(offsets.astype(OFFSET_DTYPE).tobytes())
        self.sentences += len(sequences)
        self.tokens += total
        self.max_len = max(self.max_len, int(lengths.max(initial=0)))
        return lengths

    def close(self) -> None:
        self._bin.close()
        self._idx.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is not None:
            for suffix in (".bin", ".idx"):
                Path(f"{self.prefix}{suffix}").unlink(missing_ok=True)


class Shard:
    """Read-only, memory-mapped view of one shard: `len`, `shard[i]` and `lengths`."""

    def __init__(self, prefix: Path, dtype: np.dtype | str) -> None:
        self.prefix = Path(prefix)
        self.offsets = np.memmap(f"{self.prefix}.idx", dtype=OFFSET_DTYPE, mode="r")
        bin_path = Path(f"{self.prefix}.bin")
        dtype = np.dtype(dtype)
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
