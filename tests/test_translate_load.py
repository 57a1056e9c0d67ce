"""`nmtkit translate` through stdin at two input sizes: bounded memory, every line back in order.

The same harness as `benchmarks/translate_load.py` (a fresh `python -m nmtkit translate` per
size, input written on the fly, output counted and checked at empty lines), on test_translate's
tiny model, with greedy search. The translations run on one torch thread: on a busy 2-core
machine, two threads per process spend most of their time waiting for each other (8x slower
here), and this test must not depend on what else the machine is doing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.translate_load import MAX_RATIO, run_load

SIZES = (20_000, 200_000)


@pytest.mark.slow
def test_stdin_stream_keeps_memory_flat_and_lines_in_order(trained: Path) -> None:
    sources = (trained / "test.en").read_text(encoding="utf-8").splitlines()
    decode = ["--greedy", "--batch-tokens", "4000", "--device", "cpu"]
    small, large = (run_load(trained / "run", n, sources, decode, threads=1) for n in SIZES)
    for result in (small, large):
        assert result.problems == []  # exit status 0, N lines out, empty in -> empty out
        assert result.lines_out == result.lines
        assert result.empty_inputs > 0.01 * result.lines
    assert large.peak_rss_mib / small.peak_rss_mib < MAX_RATIO
