"""`nmtkit translate` through stdin at two input sizes: bounded memory, every line back in order.

The same harness as `benchmarks/translate_load.py` (a fresh `python -m nmtkit translate` per
size, input written on the fly, output counted and checked at empty lines), on a tiny model
trained in a few seconds, with greedy search. Everything runs on one torch thread: on a busy
2-core machine, two threads per process spend most of their time waiting for each other
(8x slower here), and this test must not depend on what else the machine is doing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.translate_load import MAX_RATIO, run_load
from tests.conftest import run_cli, toy_run_recipe
from tests.test_translate import MODEL

SIZES = (20_000, 200_000)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with test_translate.py's tiny attention model (120 steps)."""
    root = tmp_path_factory.mktemp("load")
    path = toy_run_recipe(
        root,
        {"train": (600, 0), "valid": (30, 1), "test": (200, 2)},
        max_words=10,
        tokenizer={"vocab_size": 48},
        model=MODEL,
        train={
            "seed": 1,
            "lr": 0.01,
            "batch_tokens": 400,
            "valid_every": 120,
            "max_steps": 120,
            "keep_checkpoints": 1,
            "device": "cpu",
            "early_stopping": {"patience": None},
        },
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for command in ("prepare", "train"):
            result = run_cli(command, path)
            assert result.exit_code == 0, result.stderr
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.mark.slow
def test_stdin_stream_keeps_memory_flat_and_lines_in_order(tiny_run: Path) -> None:
    sources = (tiny_run / "test.en").read_text(encoding="utf-8").splitlines()
    decode = ["--greedy", "--batch-tokens", "4000", "--device", "cpu"]
    small, large = (run_load(tiny_run / "run", n, sources, decode, threads=1) for n in SIZES)
    for result in (small, large):
        assert result.problems == []  # exit status 0, N lines out, empty in -> empty out
        assert result.lines_out == result.lines
        assert result.empty_inputs > 0.01 * result.lines
    assert large.peak_rss_mib / small.peak_rss_mib < MAX_RATIO
