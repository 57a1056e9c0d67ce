"""The CUDA path end to end through the CLI (`pytest -m gpu`; skipped without a GPU).

`make gpu-check` runs these on a lent GPU. They hold the invariants of the CPU suite on CUDA:
resume equals uninterrupted (fp32 and bf16 autocast), training under fp16 with loss scaling,
decoding on the GPU equals decoding on the CPU in fp32, and beam 1 equals greedy under bf16.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli
from tests.train.test_train import (  # noqa: F401 (prepared_run is a fixture)
    copy_run,
    final_weights,
    log_records,
    prepared_run,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _train(recipe: Path, *sets: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    result = run_cli("train", recipe, "--set", "train.device=cuda", *args)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_resume_equals_uninterrupted(
    prepared_run: Path,  # noqa: F811
    tmp_path: Path,
    precision: str,
) -> None:
    whole = copy_run(prepared_run, tmp_path / "whole")
    _train(whole, f"train.precision={precision}")
    parts = copy_run(prepared_run, tmp_path / "parts")
    _train(parts, f"train.precision={precision}", "train.max_steps=5")
    _train(parts, f"train.precision={precision}")
    a, b = final_weights(tmp_path / "whole" / "run"), final_weights(tmp_path / "parts" / "run")
    diffs = {name: float((a[name].float() - b[name].float()).abs().max()) for name in a}
    assert all(d == 0 for d in diffs.values()), f"max |diff| per tensor: {diffs}"
    losses = [r["loss"] for r in log_records(tmp_path / "whole" / "run") if r["kind"] == "train"]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_cuda_fp16_training_scales_the_loss_and_stays_finite(
    prepared_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    recipe = copy_run(prepared_run, tmp_path / "fp16")
    _train(recipe, "train.precision=fp16")
    records = log_records(tmp_path / "fp16" / "run")
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    weights = final_weights(tmp_path / "fp16" / "run")
    assert all(torch.isfinite(w.float()).all() for w in weights.values())


def _translate(trained: Path, *args: str) -> list[str]:
    result = run_cli("translate", "-m", trained / "run", "-i", trained / "test.en", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("search", [["--greedy"], ["--beam", "5"]])
def test_cuda_fp32_decoding_equals_the_cpu(trained: Path, search: list[str]) -> None:
    cpu = _translate(trained, "--device", "cpu", "--precision", "fp32", *search)
    gpu = _translate(trained, "--device", "cuda", "--precision", "fp32", *search)
    assert len(gpu) == len(cpu)
    same = sum(a == b for a, b in zip(cpu, gpu, strict=True))
    # fp32 on both; cuBLAS may sum in another order, so allow a near-tie to flip in one line
    assert same >= len(cpu) - 1, [(a, b) for a, b in zip(cpu, gpu, strict=True) if a != b]


def test_cuda_bf16_beam_one_equals_greedy(trained: Path) -> None:
    greedy = _translate(trained, "--device", "cuda", "--precision", "bf16", "--greedy")
    beam = _translate(trained, "--device", "cuda", "--precision", "bf16", "--beam", "1")
    assert greedy == beam
    full = _translate(trained, "--device", "cuda", "--precision", "bf16", "--beam", "5")
    assert len(full) == len(greedy)


def test_cuda_shortlist_and_score(trained: Path) -> None:
    """The shortlist's restricted output layer and forced decoding run on the GPU: scoring the
    GPU's own beam output gives the CPU's scores (fp32) within rounding."""
    lines = _translate(trained, "--device", "cuda", "--precision", "fp32", "--shortlist")
    assert len(lines) == len(_translate(trained, "--device", "cpu"))
    hyps = trained / "gpu-hyps.de"
    hyps.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    scores = {}
    for device in ("cpu", "cuda"):
        args = ["score", "-m", trained / "run", "--src", trained / "test.en", "--tgt", hyps]
        result = run_cli(*args, "--device", device, "--precision", "fp32")
        assert result.exit_code == 0, result.stderr
        scores[device] = [float(row.split("\t")[0]) for row in result.stdout.splitlines()]
    assert len(scores["cuda"]) == len(lines)
    torch.testing.assert_close(
        torch.tensor(scores["cuda"]), torch.tensor(scores["cpu"]), atol=2e-3, rtol=1e-4
    )
