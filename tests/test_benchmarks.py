"""The benchmark scripts still run against the current code (they use some of its internals):
one short measurement each, on the toy run of test_train."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tests.test_train import prepared_run

__all__ = ["prepared_run"]  # the fixture, shared with test_train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_train_bench_measures_throughput_and_flops(prepared_run: Path) -> None:
    import train_bench

    row = train_bench.measure(
        "iwslt", prepared_run / "run" / "data", torch.device("cpu"), "fp32", 1, 2
    )
    assert row["tok_per_s"] > 0
    assert row["params"] > 5_000_000  # the IWSLT size, whatever the toy data's vocabulary
    # FLOPs per target token: at least the output layer's forward and backward (3 x 2 x H x V)
    assert row["train_flops_per_tgt_token"] > 3 * 2 * 256 * 8000
    assert train_bench.matmul_peak(torch.device("cpu"), torch.float32, 64, 0.05) > 0


@pytest.mark.parametrize("name", ["demo", "iwslt"])
def test_benchmark_sizes_are_valid_model_sections(name: str) -> None:
    import train_bench

    from nmtkit.recipe import ModelConfig

    ModelConfig(**train_bench.SIZES[name][1])
