"""Length-bucketed, token-budgeted batches from memory-mapped shards, with resumable state.

An epoch's batches are made by (1) shuffling the examples with a generator seeded by
(seed, epoch), (2) sorting them by length (stable, so ties stay shuffled), (3) cutting the
sorted list into batches whose cost, `size x longest side (+1 for BOS/EOS)`, padding included,
stays within `batch_tokens`, and (4) shuffling the order of the batches. The same seed gives
the same stream on every machine; `state_dict()` / `load_state_dict()` record and restore the
position (epoch, batch), so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from nmtkit.data.shards import Shard
from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


class Batch(NamedTuple):
    """A padded batch. Shapes: src [B,S], src_lens [B], tgt_in / tgt_out [B,T]. `src` is the
    source ids followed by EOS; `tgt_in` is BOS followed by the target ids and `tgt_out` the
    target ids followed by EOS (what the decoder must predict at each step)."""

    src: torch.Tensor
    src_lens: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    indices: torch.Tensor

    @property
    def tgt_tokens(self) -> int:
        """Real (non-pad) target tokens, EOS included: the unit of loss and throughput."""
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in self))

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in self))


def make_batches(
    src_lens: np.ndarray, tgt_lens: np.ndarray, *, batch_tokens: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Cut the examples into length-sorted, budget-filled batches, in shuffled order."""
    order = rng.permutation(len(src_lens))
    longest = np.maximum(src_lens, tgt_lens)[order] + 1  # + EOS (source) / BOS (target)
    order = order[np.argsort(longest, kind="stable")]
    longest = np.sort(longest, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        # The list is sorted, so a batch ending at `end` costs (end - start) * longest[end - 1].
        # Every example costs at least 1, so no batch holds more than batch_tokens of them.
        window = longest[start : start + batch_tokens]
        cost = np.arange(1, len(window) + 1) * window
        end = start + max(1, int(np.searchsorted(cost, batch_tokens, side="right")))
        batches.append(order[start:end])
        start = end
    return [batches[i] for i in rng.permutation(len(batches))]


class BatchSampler:
    """An endless, resumable stream of index batches, epoch after epoch."""

    def __init__(
        self, src_lens: np.ndarray, tgt_lens: np.ndarray, *, batch_tokens: int, seed: int
    ) -> None:
        if len(src_lens) != len(tgt_lens):
            raise ValueError(f"{len(src_lens)} source lengths but {len(tgt_lens)} target lengths")
        if not len(src_lens):
            raise ValueError("no examples to batch")
        self.src_lens = np.asarray(src_lens, dtype=np.int64)
        self.tgt_lens = np.asarray(tgt_lens, dtype=np.int64)
        self.batch_tokens = batch_tokens
        self.seed = seed
        self.epoch = 1
        self.position = 0  # batches of the current epoch already handed out
        self._batches: list[np.ndarray] | None = None

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of one epoch (a pure function of seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        return make_batches(self.src_lens, self.tgt_lens, batch_tokens=self.batch_tokens, rng=rng)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            if self._batches is None:
                self._batches = self.epoch_batches(self.epoch)
            if self.position < len(self._batches):
                self.position += 1
                yield self._batches[self.position - 1]
            else:
                self.epoch, self.position, self._batches = self.epoch + 1, 0, None

    def batches_per_epoch(self) -> int:
        if self._batches is None:
            self._batches = self.epoch_batches(self.epoch)
        return len(self._batches)

    def epochs_done(self) -> int:
        """Complete epochs handed out so far."""
        finished_current = self.position >= self.batches_per_epoch()
        return self.epoch if finished_current else self.epoch - 1

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._batches = None


def collate(src: Shard, tgt: Shard, indices: np.ndarray) -> Batch:
    """Pad the examples `indices` of two shards into a Batch (on the CPU)."""
    src_seqs = [src[int(i)] for i in indices]
    tgt_seqs = [tgt[int(i)] for i in indices]
    src_ids = pad([*s, EOS_ID] for s in src_seqs)
    tgt_in = pad([BOS_ID, *t] for t in tgt_seqs)
    tgt_out = pad([*t, EOS_ID] for t in tgt_seqs)
    src_lens = torch.tensor([len(s) + 1 for s in src_seqs], dtype=torch.long)
    return Batch(src_ids, src_lens, tgt_in, tgt_out, torch.as_tensor(indices, dtype=torch.long))


def pad(sequences: Any) -> torch.Tensor:
    """Right-pad id sequences with PAD_ID into a [N, longest] long tensor."""
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    out = np.full((len(seqs), max((len(s) for s in seqs), default=0)), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(seqs):
        out[row, : len(seq)] = seq
    return torch.from_numpy(out)
