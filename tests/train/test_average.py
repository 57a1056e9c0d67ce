"""`train.average_last: N`: avg.pt, the mean of the last N validated checkpoints, written at the
end of a run, validated and logged, and translated beside best.pt by `nmtkit evaluate RUN`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmtkit.checkpoint import Checkpoint
from tests.conftest import run_cli, toy_run_recipe

MODEL = {
    "cell": "gru",
    "embed_size": 16,
    "hidden_size": 16,
    "encoder_layers": 1,
    "attention": "luong_general",
    "input_feeding": "none",
}


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("average")
    recipe = toy_run_recipe(
        root,
        {"train": (300, 0), "valid": (20, 1), "test": (20, 2)},
        max_words=8,
        tokenizer={"vocab_size": 40},
        model=MODEL,
        train={
            "seed": 1,
            "batch_tokens": 200,
            "valid_every": 2,
            "log_every": 2,
            "max_steps": 10,
            "keep_checkpoints": 1,
            "average_last": 3,
            "early_stopping": {"metric": "loss", "patience": None},
            "device": "cpu",
        },
        decode={"beam_size": 2},
    )
    for command in ("prepare", "train"):
        result = run_cli(command, recipe)
        assert result.exit_code == 0, result.stderr
    return root / "run"


def test_avg_pt_is_the_mean_of_the_last_n_validated_checkpoints(averaged_run: Path) -> None:
    folder = averaged_run / "checkpoints"
    kept = sorted(p.name for p in folder.glob("step-*.pt"))
    # the last 3 are kept for averaging beside the best 1 (which may be one of them)
    assert {"step-0000006.pt", "step-0000008.pt", "step-0000010.pt"} <= set(kept)
    averaged = Checkpoint.read(folder / "avg.pt")
    assert averaged.training is None and averaged.averaged_steps == [6, 8, 10]
    parts = [Checkpoint.read(folder / f"step-{s:07d}.pt").model for s in (6, 8, 10)]
    for name, value in averaged.model.items():
        if value.is_floating_point():
            expected = sum(p[name].double() for p in parts) / 3
            assert torch.allclose(value.double(), expected, atol=1e-6), name
    records = [json.loads(line) for line in (averaged_run / "logs" / "metrics.jsonl").open()]
    average = [r for r in records if r["kind"] == "average"]
    assert len(average) == 1 and average[0]["steps"] == [6, 8, 10]
    assert 0 <= average[0]["bleu"] <= 100 and average[0]["ppl"] > 1


def test_evaluate_translates_with_avg_beside_best(averaged_run: Path) -> None:
    result = run_cli("evaluate", averaged_run, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert (averaged_run / "translations" / "test.de").exists()
    assert (averaged_run / "translations" / "test.avg.de").exists()
    report = json.loads((averaged_run / "reports" / "test.json").read_text())
    assert "tiny.avg" in json.dumps(report)
