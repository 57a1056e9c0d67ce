"""Training killed at any moment resumes from an intact checkpoint and ends bit for bit where an
uninterrupted run ends; a failed checkpoint write keeps the previous one; a second trainer on
the same run is refused.

The harness starts `nmtkit train` as a subprocess (through tests/faults.py, which can signal the
process half way through its N-th checkpoint write), kills it with SIGKILL or SIGTERM, checks
that every checkpoint file left behind loads, and starts it again until the run completes. The
finished run must equal an uninterrupted one: the weights, optimizer state and data position of
last.pt, best.pt and every kept step file, the kept-scores file and the metrics log (timing
fields aside). CPU only, so every run is deterministic.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import torch
import yaml

from nmtkit.checkpoint import Checkpoint
from tests.conftest import one_line, run_cli, toy_pairs, write_lines
from tests.train.test_train import copy_run, log_records, prepared_run, trained_copy

__all__ = ["prepared_run"]  # the fixture, shared with test_train

ROOT = Path(__file__).resolve().parents[2]
# 40 updates, validated (and saved) every 5; the best two step files are kept, so pruning
# happens too.
SETTINGS = ["--set", "train.max_steps=40", "--set", "train.valid_every=5"]
SETTINGS += ["--set", "train.keep_checkpoints=2"]


@dataclass
class Attempt:
    """One start of the trainer and how it ended."""

    how: str  # "kill in write 3", "SIGKILL after 0.8s", "finished", ...
    returncode: int
    stderr: str
    last_step: int | None  # step of the last.pt left behind (None: none yet)
    torn_write: bool  # a temporary file of an unfinished checkpoint write was left behind


def start(recipe: Path, fault: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NMTKIT_FAULT", None)
    if fault:
        env["NMTKIT_FAULT"] = fault
    cmd = [sys.executable, "-m", "tests.faults", "train", str(recipe), *SETTINGS]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def kill_later(proc: subprocess.Popen[str], log: Path, signum: int, delay: float) -> None:
    """Send `signum` `delay` seconds after the run first writes to its log (training has
    begun), or do nothing if it finishes before that."""
    size = log.stat().st_size if log.exists() else -1
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if log.exists() and log.stat().st_size != size:
            break
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signum)


def check_intact(run: Path) -> tuple[int | None, bool]:
    """Every checkpoint under its real name loads; returns last.pt's step and whether an
    unfinished write was left under a temporary name."""
    folder = run / "checkpoints"
    for path in folder.glob("*.pt"):
        Checkpoint.read(path)  # raises on a half-written file
    last = folder / "last.pt"
    step = Checkpoint.read(last).step if last.exists() else None
    return step, any(folder.glob(".*.tmp"))


def train_through(recipe: Path, faults: list[tuple[str, Any]], seed: int = 0) -> list[Attempt]:
    """Start the trainer once per fault, then once more without, until it finishes."""
    run = recipe.parent / "run"
    log = run / "logs" / "metrics.jsonl"
    rng = random.Random(seed)
    attempts = []
    for kind, arg in [*faults, ("finish", None)]:
        if kind.endswith((" in write", " in link")):
            sig, _, where = kind.split()
            proc = start(recipe, f"{sig}:{where}:{arg}:{rng.uniform(0.05, 0.95):.2f}")
        else:
            proc = start(recipe)
            if kind != "finish":
                kill_later(proc, log, arg, rng.uniform(0.0, 1.5))
        _, stderr = proc.communicate(timeout=300)
        step, torn = check_intact(run)
        attempts.append(Attempt(f"{kind} {arg}", proc.returncode, stderr, step, torn))
        assert "Traceback" not in stderr, stderr
    assert attempts[-1].returncode == 0, attempts[-1].stderr
    return attempts


def assert_same_run(a: Path, b: Path) -> None:
    """Two finished runs hold the same checkpoints, kept scores and log."""
    names = sorted(p.name for p in (a / "checkpoints").glob("*.pt"))
    assert names == sorted(p.name for p in (b / "checkpoints").glob("*.pt"))
    for name in names:
        x, y = (Checkpoint.read(r / "checkpoints" / name) for r in (a, b))
        assert x.training is not None and y.training is not None
        assert (x.step, x.training.sampler) == (y.step, y.training.sampler), name
        for key in x.model:
            assert torch.equal(x.model[key], y.model[key]), (name, key)
        for i, state in x.training.optimizer["state"].items():
            for key, value in state.items():
                assert torch.equal(value, y.training.optimizer["state"][i][key]), (name, i, key)
    scores = [json.loads((r / "checkpoints" / "scores.json").read_text()) for r in (a, b)]
    assert scores[0] == scores[1]
    assert log_records(a) == log_records(b)


@pytest.fixture(scope="module")
def uninterrupted(prepared_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_copy(prepared_run, tmp_path_factory.mktemp("whole") / "w", *SETTINGS)


def test_sigkill_in_checkpoint_writes_and_at_random_moments(
    prepared_run: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    recipe = copy_run(prepared_run, tmp_path / "k")
    faults = [
        ("kill in write", 2),  # step 10's checkpoint, part written
        ("kill in write", 1),  # the same again after resuming from step 5
        ("kill in link", 1),  # step 10's last.pt whole, best.pt / step file not linked yet
        ("SIGKILL", signal.SIGKILL),  # anywhere
    ]
    attempts = train_through(recipe, faults)
    assert [a.returncode for a in attempts[:3]] == [-signal.SIGKILL] * 3
    # Killed half way through writing step 10's checkpoint: step 5's last.pt is intact, the
    # half-written file is under its temporary name only; the next start removes it.
    assert [(a.last_step, a.torn_write) for a in attempts[:3]] == [
        (5, True),
        (5, True),
        (10, False),
    ]
    assert "removed .last.pt." in one_line(attempts[1].stderr)
    assert "resuming from" in one_line(attempts[3].stderr)
    assert_same_run(uninterrupted, recipe.parent / "run")
    assert not list((recipe.parent / "run" / "checkpoints").glob(".*.tmp"))


def test_sigterm_in_a_checkpoint_write_finishes_it_then_saves_and_exits(
    prepared_run: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    recipe = copy_run(prepared_run, tmp_path / "t")
    attempts = train_through(recipe, [("term in write", 3), ("SIGTERM", signal.SIGTERM)])
    first = attempts[0]
    assert first.returncode == 128 + signal.SIGTERM
    assert first.last_step == 15 and not first.torn_write  # the write completed
    assert "stopped by SIGTERM at step 15" in one_line(first.stderr)
    assert_same_run(uninterrupted, recipe.parent / "run")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_random_kills(
    prepared_run: Path, uninterrupted: Path, tmp_path: Path, seed: int
) -> None:
    """Eight interruptions at random moments, SIGKILL and SIGTERM mixed, some in writes."""
    rng = random.Random(seed)
    faults: list[tuple[str, Any]] = []
    for _ in range(8):
        kind = rng.choice(["SIGKILL", "SIGTERM", "SIGINT", "kill in write", "kill in link"])
        arg = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
        faults.append((kind, arg.get(kind, 1)))
    recipe = copy_run(prepared_run, tmp_path / "r")
    attempts = train_through(recipe, faults, seed=seed)
    assert_same_run(uninterrupted, recipe.parent / "run")
    for attempt in attempts:  # a plain -SIGTERM/-SIGINT: the signal came during start-up
        stopped = (128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT)
        assert attempt.returncode in (0, -signal.SIGKILL, *stopped), attempt


# ------------------------------------------------------------------- failed writes, locking


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(
    prepared_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while step 10's checkpoint is written: a clear error, exit 2, step 5's
    checkpoint intact, no temporary file; with space again the run continues to the end."""
    recipe = copy_run(prepared_run, tmp_path / "d")
    real_save, calls = torch.save, {"n": 0}

    def filling_disk(obj: Any, f: BinaryIO, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            f.write(b"\0" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", filling_disk)
    result = run_cli("train", recipe, *SETTINGS)
    monkeypatch.undo()
    assert result.exit_code == 2
    message = one_line(result.stderr.split("error:", 1)[1])
    last = recipe.parent / "run" / "checkpoints" / "last.pt"
    assert f"could not write {last}: No space left on device (ENOSPC)" in one_line(message)
    assert "the previous version is intact" in message and "Traceback" not in result.stderr
    assert check_intact(recipe.parent / "run") == (5, False)
    resumed = run_cli("train", recipe, *SETTINGS)
    assert resumed.exit_code == 0 and "resuming from" in one_line(resumed.stderr)


def test_a_file_size_limit_makes_the_checkpoint_write_fail_for_real(
    prepared_run: Path, tmp_path: Path
) -> None:
    """The operating system refuses the write (RLIMIT_FSIZE, EFBIG): same outcome as disk full."""
    recipe = copy_run(prepared_run, tmp_path / "f")
    assert run_cli("train", recipe, "--set", "train.max_steps=5").exit_code == 0
    last = recipe.parent / "run" / "checkpoints" / "last.pt"
    size = last.stat().st_size

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    cmd = [sys.executable, "-m", "nmtkit", "train", str(recipe), *SETTINGS]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"could not write {last}: File too large (EFBIG)" in one_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert check_intact(recipe.parent / "run") == (5, False)


def test_an_unwritable_metrics_log_is_a_clear_error(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "log")
    log = recipe.parent / "run" / "logs" / "metrics.jsonl"
    log.mkdir(parents=True)  # a folder where the log file should be: every append fails
    result = run_cli("train", recipe, *SETTINGS)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert f"could not write {log}: Is a directory (EISDIR)" in one_line(result.stderr)


def test_a_second_trainer_on_the_same_run_is_refused(prepared_run: Path, tmp_path: Path) -> None:
    recipe = copy_run(prepared_run, tmp_path / "two")
    first = start(recipe)
    lock = recipe.parent / "run" / ".lock"
    deadline = time.time() + 60
    while not (lock.exists() and lock.read_text()) and time.time() < deadline:
        time.sleep(0.01)
    second = run_cli("train", recipe, *SETTINGS)
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.exit_code == 2
    assert f"{recipe.parent / 'run'} is in use: `nmtkit train (pid {first.pid})`" in one_line(
        second.stderr
    )
    # The lock goes with the process, however it ends: the next start is not refused.
    assert run_cli("train", recipe, *SETTINGS).exit_code == 0


# ------------------------------------------------------------------------------ translate


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_interrupted_translate_leaves_only_a_partial_file(
    uninterrupted: Path, tmp_path: Path, signum: int
) -> None:
    """Killed mid-file: no file under the final name; what was written is in NAME.PID.partial,
    and with SIGTERM/SIGINT those are whole lines, the first lines of the full translation."""
    lines = [p[0] for p in toy_pairs(3 * 4096, seed=5, max_words=8)]
    source = write_lines(tmp_path / "in.txt", lines)
    output = tmp_path / "out.txt"
    cmd = [sys.executable, "-m", "nmtkit", "translate", "-m", str(uninterrupted), "--greedy"]
    cmd += ["-i", str(source), "-o", str(output)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / f"out.txt.{proc.pid}.partial"  # one per process
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if partial.exists() and partial.stat().st_size:
            break
        time.sleep(0.002)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("translate finished before the signal arrived")
    assert not output.exists()
    written = partial.read_text(encoding="utf-8")
    assert 0 < written.count("\n") < len(lines)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == 128 + signum
    done = written.count("\n")
    assert written.endswith("\n")  # whole lines only
    assert f"interrupted after {done:,} lines; they are in {partial}" in one_line(stderr)
    assert "Traceback" not in stderr
    first = min(done, 300)  # the lines written are those of a complete run, in order
    head = write_lines(tmp_path / "head.txt", lines[:first])
    whole = run_cli("translate", "-m", uninterrupted, "--greedy", "-i", head)
    assert whole.exit_code == 0
    assert written.splitlines()[:first] == whole.stdout.splitlines()


# -------------------------------------------------------------------------------- prepare


def test_prepare_killed_at_random_moments_then_rerun_gives_the_same_data(tmp_path: Path) -> None:
    """prepare stages into data.partial/ and swaps it in whole: killed anywhere, it leaves the
    previous state (here: no data/) and the rerun writes what an uninterrupted run writes."""
    source = {"synthetic": {"pairs": 20_000, "valid": 100, "test": 100, "seed": 4}}
    recipe = {"name": "p", "data": {"source": source}, "tokenizer": {"vocab_size": 300}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "run_dir": str(tmp_path / "run")}), encoding="utf-8")
    data = tmp_path / "run" / "data"
    assert run_cli("prepare", path).exit_code == 0
    whole = data.rename(tmp_path / "whole")  # the same run_dir for both: paths are in spm.model
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(7)
    staged = []
    for _ in range(2):
        cmd = [sys.executable, "-m", "nmtkit", "prepare", str(path)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 3.5))
        proc.kill()
        proc.wait()
        assert not data.exists()  # never a half-prepared data/
        staged.append(data.with_name("data.partial").exists())
    assert any(staged)  # at least one kill landed while prepare was writing
    rerun = run_cli("prepare", path)
    assert rerun.exit_code == 0, rerun.stderr
    assert not data.with_name("data.partial").exists()

    def contents(root: Path) -> dict[str, Any]:
        files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        manifest = json.loads(files.pop("manifest.json"))
        manifest.pop("seconds"), manifest.pop("created")  # wall clock
        return {**files, "manifest.json": manifest}

    assert contents(data) == contents(whole)
