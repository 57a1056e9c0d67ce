"""`train.init_from`: fine-tuning a trained model on another corpus, keeping its vocabulary.

The model starts from the checkpoint's weights and nothing else (step, optimizer, schedule and
data position start fresh); `prepare` encodes the new corpus with the checkpoint's tokenizers;
a model section of another shape is a clear error before any training.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from nmtkit.checkpoint import Checkpoint
from nmtkit.data.manifest import PreparedData
from tests.conftest import TINY_MODEL, one_line, run_cli, toy_run_recipe

TRAIN = {
    "seed": 2,
    "lr": 1e-12,  # Adam moves each weight by about lr: the weights stay the checkpoint's
    "batch_tokens": 300,
    "valid_every": 3,
    "log_every": 3,
    "max_steps": 3,
    "device": "cpu",
    "early_stopping": {"patience": None},
}


def fine_tune_recipe(root: Path, checkpoint: Path, **changes: object) -> Path:
    """A new toy corpus (other sentences) with a recipe that fine-tunes `checkpoint`."""
    model = {**TINY_MODEL, **changes}
    return toy_run_recipe(
        root,
        {"train": (200, 7), "valid": (20, 8)},
        max_words=9,
        tokenizer={"vocab_size": 32},  # ignored: the checkpoint's tokenizer is used
        model=model,
        train={**TRAIN, "init_from": str(checkpoint)},
    )


def test_fine_tuning_starts_from_the_weights_with_the_checkpoints_vocabulary(
    trained: Path, tmp_path: Path
) -> None:
    base = trained / "run" / "checkpoints" / "best.pt"
    parent = Checkpoint.read(base)
    recipe = fine_tune_recipe(tmp_path, base)
    prepared = run_cli("prepare", recipe)
    assert prepared.exit_code == 0, prepared.stderr
    data = PreparedData.open(tmp_path / "run" / "data")
    assert data.tokenizer_models().hashes == parent.tokenizer.hashes
    assert data.manifest.tokenizer.src_vocab_size == parent.vocab_sizes[0] != 32

    result = run_cli("train", recipe)
    assert result.exit_code == 0, result.stderr
    assert f"initialised from {base}" in one_line(result.stderr)
    tuned = Checkpoint.read(tmp_path / "run" / "checkpoints" / "last.pt")
    assert tuned.step == 3  # a fresh count, not the parent's 120
    assert tuned.training is not None
    adam_steps = {int(s["step"]) for s in tuned.training.optimizer["state"].values()}
    assert adam_steps == {3}  # a fresh optimizer
    assert tuned.tokenizer.hashes == parent.tokenizer.hashes
    for name, weight in parent.model.items():
        assert torch.allclose(tuned.model[name], weight, atol=1e-9), name


def test_fine_tuning_a_model_of_another_shape_is_a_clear_error(
    trained: Path, tmp_path: Path
) -> None:
    base = trained / "run" / "checkpoints" / "best.pt"
    recipe = fine_tune_recipe(tmp_path, base, hidden_size=48)
    assert run_cli("prepare", recipe).exit_code == 0
    result = run_cli("train", recipe)
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "train.init_from" in message and "another shape" in message, message
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_a_missing_init_from_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    recipe = fine_tune_recipe(tmp_path, tmp_path / "nowhere.pt")
    result = run_cli("prepare", recipe)
    assert result.exit_code == 2
    assert "nowhere.pt does not exist" in one_line(result.stderr)


def test_data_prepared_without_the_checkpoint_must_be_prepared_again(
    trained: Path, tmp_path: Path
) -> None:
    base = trained / "run" / "checkpoints" / "best.pt"
    recipe = fine_tune_recipe(tmp_path, base)
    plain = yaml.safe_load(recipe.read_text())
    del plain["train"]["init_from"]
    plain_path = tmp_path / "plain.yaml"
    plain_path.write_text(yaml.safe_dump(plain), encoding="utf-8")
    assert run_cli("prepare", plain_path).exit_code == 0  # its own 32-piece tokenizer
    result = run_cli("train", recipe)
    assert result.exit_code == 2
    assert "run `nmtkit prepare RECIPE` again" in one_line(result.stderr)
