"""Binary shards: what is written is what is read, for both id widths and edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmtkit.data.shards import Shard, ShardWriter, token_dtype


def test_dtype_by_vocabulary_size() -> None:
    assert token_dtype(8000) == np.uint16
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.int32


@pytest.mark.parametrize("vocab", [100, 70000])
def test_round_trip_in_chunks(tmp_path: Path, vocab: int) -> None:
    rng = np.random.default_rng(0)
    sentences = [rng.integers(0, vocab, rng.integers(0, 30)).tolist() for _ in range(500)]
    dtype = token_dtype(vocab)
    with ShardWriter(tmp_path / "s", dtype) as writer:
        for start in range(0, 500, 77):
            writer.add(sentences[start : start + 77])
    shard = Shard(tmp_path / "s", dtype)
    assert len(shard) == 500
    assert [shard[i].tolist() for i in range(500)] == sentences
    assert shard[-1].tolist() == sentences[-1]
    assert shard.lengths.tolist() == [len(s) for s in sentences]
    assert writer.tokens == sum(map(len, sentences))
    with pytest.raises(IndexError):
        shard[500]


def test_empty_shard(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "e", np.dtype("<u2")):
        pass
    assert len(Shard(tmp_path / "e", "<u2")) == 0


def test_ids_out_of_range_are_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="out of range"),
        ShardWriter(tmp_path / "x", np.dtype("<u2")) as w,
    ):
        w.add([[70000]])
    assert not (tmp_path / "x.bin").exists()  # partial files removed


def test_inconsistent_shard_is_detected(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "s", np.dtype("<u2")) as writer:
        writer.add([[1, 2, 3], [4]])
    with open(tmp_path / "s.bin", "r+b") as f:
        f.truncate(4)
    with pytest.raises(ValueError, match="inconsistent"):
        Shard(tmp_path / "s", "<u2")
