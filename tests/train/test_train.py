"""`nmtkit train` end to end on a tiny prepared corpus: outputs, exact resume, stops, errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nmtkit.checkpoint import Checkpoint
from nmtkit.device import training_precision
from tests.conftest import one_line, run_cli, toy_pairs, toy_run_recipe, write_lines

TINY_MODEL = {
    "cell": "lstm",
    "embed_size": 16,
    "hidden_size": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "attention": "luong_general",
    "input_feeding": "concat",
    "dropout": 0.1,
}
TIMING = ("tok_per_s", "elapsed")  # the only fields allowed to differ between equal runs


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared run directory (toy corpus, 40-piece vocabulary) that tests copy."""
    root = tmp_path_factory.mktemp("prepared")
    path = toy_run_recipe(
        root,
        {"train": (400, 0), "valid": (24, 1)},
        max_words=8,
        tokenizer={"vocab_size": 40},
        model=TINY_MODEL,
        train={
            "seed": 3,
            "batch_tokens": 200,
            "valid_every": 4,
            "log_every": 2,
            "max_steps": 8,
            "device": "cpu",
            "early_stopping": {"patience": None},
        },
        decode={"batch_tokens": 400},
    )
    result = run_cli("prepare", path)
    assert result.exit_code == 0, result.stderr
    return root


def copy_run(prepared_run: Path, dest: Path) -> Path:
    """A fresh copy of the prepared run; returns its recipe (pointing at the copy)."""
    shutil.copytree(prepared_run, dest)
    recipe = yaml.safe_load((dest / "recipe.yaml").read_text())
    recipe["run_dir"] = str(dest / "run")
    path = dest / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def trained_copy(prepared_run: Path, dest: Path, *args: str) -> Path:
    """A copy of the prepared run trained by `nmtkit train RECIPE ARGS`; its run directory."""
    recipe = copy_run(prepared_run, dest)
    result = run_cli("train", recipe, *args)
    assert result.exit_code == 0, result.stderr
    return recipe.parent / "run"


def log_records(run: Path) -> list[dict]:
    lines = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return Checkpoint.read(run / "checkpoints" / "last.pt").model


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_train_writes_checkpoints_log_and_validation(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "a")
    result = run_cli("train", recipe)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "a" / "run"
    names = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"last.pt", "best.pt", "step-0000004.pt", "step-0000008.pt"} <= names
    records = log_records(run)
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4, 6, 8]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [4, 8]
    assert all(0 <= r["bleu"] <= 100 and r["ppl"] > 1 and r["samples"] for r in valid)
    checkpoint = Checkpoint.read(run / "checkpoints" / "last.pt")
    assert checkpoint.step == 8
    assert checkpoint.tokenizer.src and checkpoint.tokenizer.joint is True
    assert yaml.safe_load(checkpoint.recipe_yaml)["model"]["hidden_size"] == 16
    assert checkpoint.recipe().model.hidden_size == 16
    assert "max_steps=8 reached" in one_line(result.stderr)
    assert (run / "recipe.resolved.yaml").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_equals_uninterrupted(prepared_run: Path, tmp_path: Path, precision: str) -> None:
    """Stopped at step 5 (by max_steps), continued to 8: same weights and log, bit for bit;
    in bf16 too (a bf16 copy on a CPU, remade from the fp32 master on resume)."""
    chosen = ("--set", f"train.precision={precision}")
    whole = copy_run(prepared_run, tmp_path / "whole")
    assert run_cli("train", whole, *chosen).exit_code == 0
    parts = copy_run(prepared_run, tmp_path / "parts")
    assert run_cli("train", parts, *chosen, "--set", "train.max_steps=5").exit_code == 0
    resumed = run_cli("train", parts, *chosen)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming from" in one_line(resumed.stderr) and "step 5" in one_line(resumed.stderr)
    assert_same_weights(
        final_weights(tmp_path / "whole" / "run"), final_weights(tmp_path / "parts" / "run")
    )
    whole_log = log_records(tmp_path / "whole" / "run")
    parts_log = [
        r
        for r in log_records(tmp_path / "parts" / "run")
        if not (r["kind"] == "valid" and r["step"] == 5)
    ]  # the early stop's own check
    assert parts_log == whole_log


def test_auto_precision_is_resolved_said_and_recorded(prepared_run: Path, tmp_path: Path) -> None:
    """`train.precision: auto` (the default) becomes this machine's choice: printed, written to
    the resolved recipe and the checkpoint; the weights are fp32 whatever it trained in."""
    recipe = copy_run(prepared_run, tmp_path / "a")
    result = run_cli("train", recipe, "--set", "train.max_steps=2")
    assert result.exit_code == 0, result.stderr
    chosen = training_precision("auto", torch.device("cpu"))
    assert f"train.precision auto: {chosen}" in one_line(result.stderr)
    run = tmp_path / "a" / "run"
    resolved = yaml.safe_load((run / "recipe.resolved.yaml").read_text())
    assert resolved["train"]["precision"] == chosen
    checkpoint = Checkpoint.read(run / "checkpoints" / "last.pt")
    assert checkpoint.recipe().train.precision == chosen
    assert all(t.dtype == torch.float32 for t in checkpoint.model.values() if t.is_floating_point())


def test_sigterm_saves_and_resume_completes_identically(prepared_run: Path, tmp_path: Path) -> None:
    whole = copy_run(prepared_run, tmp_path / "whole")
    assert run_cli("train", whole, "--set", "train.max_steps=30").exit_code == 0
    parts = copy_run(prepared_run, tmp_path / "parts")
    cmd = [sys.executable, "-m", "nmtkit", "train", str(parts), "--set", "train.max_steps=30"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "parts" / "run" / "logs" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in one_line(stderr) and "Traceback" not in stderr
    stopped_at = Checkpoint.read(tmp_path / "parts" / "run" / "checkpoints" / "last.pt").step
    assert 0 < stopped_at < 30
    assert run_cli("train", parts, "--set", "train.max_steps=30").exit_code == 0
    assert_same_weights(
        final_weights(tmp_path / "whole" / "run"), final_weights(tmp_path / "parts" / "run")
    )


def test_non_finite_losses_are_skipped_then_stop(
    prepared_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nmtkit.train.loop as loop

    real = loop.projected_loss
    calls = {"n": 0}

    def flaky(hidden, output, target, smoothing):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        sums = real(hidden, output, target, smoothing)
        if calls["n"] in (3,) or calls["n"] >= 9:  # one isolated NaN, then NaN for ever
            return sums._replace(loss=sums.loss * float("nan"))
        return sums

    recipe = copy_run(prepared_run, tmp_path / "nan")
    monkeypatch.setattr(loop, "projected_loss", flaky)
    result = run_cli("train", recipe, "--set", "train.max_steps=20")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "training diverged: the loss was not finite 5 updates in a row" in message
    run = tmp_path / "nan" / "run"
    last = Checkpoint.read(run / "checkpoints" / "last.pt")
    assert last.step == 4  # the checkpoint of the last validation before it diverged
    assert last.training is not None and last.training.state.nan_skipped == 1
    assert torch.isfinite(torch.cat([t.flatten().float() for t in last.model.values()])).all()
    train_records = [r for r in log_records(run) if r["kind"] == "train"]
    assert train_records[-1]["nan_skipped"] == 1


def test_stop_criteria_and_continuing_past_an_old_limit(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "s")
    done = run_cli("train", recipe, "--set", "train.max_steps=null", "--set", "train.max_epochs=1")
    assert done.exit_code == 0, done.stderr
    assert "max_epochs=1 reached" in one_line(done.stderr)
    again = run_cli("train", recipe, "--set", "train.max_steps=null", "--set", "train.max_epochs=1")
    assert again.exit_code == 0
    step = Checkpoint.read(tmp_path / "s" / "run" / "checkpoints" / "last.pt").step
    more = run_cli(
        "train", recipe, "--set", f"train.max_steps={step + 2}", "--set", "train.max_epochs=null"
    )
    assert more.exit_code == 0
    assert Checkpoint.read(tmp_path / "s" / "run" / "checkpoints" / "last.pt").step == step + 2


def test_early_stopping_on_loss_with_patience(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "e")
    result = run_cli(
        "train",
        recipe,
        "--set",
        "train.lr=1e-9",
        "--set",
        "train.valid_every=1",
        "--set",
        "train.max_steps=50",
        "--set",
        "train.early_stopping.metric=bleu",
        "--set",
        "train.early_stopping.patience=2",
    )
    assert result.exit_code == 0, result.stderr
    assert "early stopping: bleu did not improve in 2 validations" in one_line(result.stderr)


def test_restart_starts_over(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "r")
    assert run_cli("train", recipe, "--set", "train.max_steps=4").exit_code == 0
    result = run_cli("train", recipe, "--set", "train.max_steps=2", "--restart")
    assert result.exit_code == 0 and "resuming" not in result.stderr
    assert Checkpoint.read(tmp_path / "r" / "run" / "checkpoints" / "last.pt").step == 2


# ----------------------------------------------------------------------------- user errors


def test_checkpoints_hold_the_tokenizer_read_at_setup(
    prepared_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokenizer bytes go into every checkpoint as read at setup, with the hashes of that
    moment: a `spm.model` replaced on disk during training (a `prepare` elsewhere) changes
    neither."""
    import hashlib

    from nmtkit.data.manifest import read_manifest
    from nmtkit.train import loop

    recipe = copy_run(prepared_run, tmp_path / "a")
    data = recipe.parent / "run" / "data"
    model = data / read_manifest(data).tokenizer.src_model
    original = model.read_bytes()
    real_setup = loop.setup

    def setup_then_replace(*args: object, **kwargs: object) -> object:
        run = real_setup(*args, **kwargs)  # type: ignore[arg-type]
        model.write_bytes(b"another tokenizer")
        return run

    monkeypatch.setattr(loop, "setup", setup_then_replace)
    result = run_cli("train", recipe, "--set", "train.max_steps=4")
    monkeypatch.undo()
    assert result.exit_code == 0, result.stderr
    assert model.read_bytes() == b"another tokenizer"  # replaced before the first save
    for name in ("last.pt", "best.pt"):
        stored = Checkpoint.read(recipe.parent / "run" / "checkpoints" / name).tokenizer
        assert stored.src == stored.tgt == original
        assert stored.src_sha256 == hashlib.sha256(original).hexdigest()


def test_train_before_prepare(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"name: x\nrun_dir: {tmp_path / 'run'}\n")
    result = run_cli("train", path)
    assert result.exit_code == 2
    assert "no prepared data" in one_line(result.stderr) and "nmtkit prepare" in result.stderr


def test_changed_data_section_needs_prepare(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "d")
    result = run_cli("train", recipe, "--set", "tokenizer.vocab_size=30")
    assert result.exit_code == 2
    assert "no longer matches the recipe" in one_line(result.stderr)


def test_resume_with_another_model_is_refused(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "m")
    assert run_cli("train", recipe, "--set", "train.max_steps=2").exit_code == 0
    result = run_cli("train", recipe, "--set", "model.hidden_size=20")
    assert result.exit_code == 2
    assert "another model section" in one_line(result.stderr) and "--restart" in result.stderr


def test_corrupt_last_checkpoint_is_a_clear_error(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "c")
    assert run_cli("train", recipe, "--set", "train.max_steps=2").exit_code == 0
    last = tmp_path / "c" / "run" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    result = run_cli("train", recipe, "--set", "train.max_steps=4")
    assert result.exit_code == 2
    assert "is not a readable checkpoint" in one_line(result.stderr)


def test_fp16_needs_cuda(prepared_run: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    recipe = copy_run(prepared_run, tmp_path / "f")
    result = run_cli("train", recipe, "--set", "train.precision=fp16")
    assert result.exit_code == 2 and "fp16 needs a CUDA GPU" in one_line(result.stderr)


def test_cuda_device_without_a_gpu(prepared_run: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    recipe = copy_run(prepared_run, tmp_path / "g")
    result = run_cli("train", recipe, "--set", "train.device=cuda")
    assert result.exit_code == 2
    assert "train.device is cuda but no CUDA GPU is visible" in one_line(result.stderr)


def test_training_needs_a_valid_split(tmp_path: Path) -> None:
    pairs = toy_pairs(100, 0)
    files = {
        "train": {
            "src": str(write_lines(tmp_path / "t.en", [p[0] for p in pairs])),
            "tgt": str(write_lines(tmp_path / "t.de", [p[1] for p in pairs])),
        }
    }
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "nv",
                "run_dir": str(tmp_path / "run"),
                "data": {"source": {"files": files}},
                "tokenizer": {"vocab_size": 40},
            }
        )
    )
    assert run_cli("prepare", path).exit_code == 0
    result = run_cli("train", path)
    assert result.exit_code == 2
    assert "training needs a valid split" in one_line(result.stderr)
