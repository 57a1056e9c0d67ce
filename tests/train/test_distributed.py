"""Training on several processes (CPU, gloo) makes the updates one process makes, resumes across
process counts on the same global batch stream, and ends as one job: a rank that fails stops
the others, a signal to the launcher saves last.pt on the way out.

The runs are the toy run of test_train without dropout (each rank draws its own dropout masks,
so only then can N processes equal one bit for bit up to float summation order). DDP runs with
find_unused_parameters=False; that every model of the menu gives every parameter a gradient is
test_models.test_every_combination_trains_one_step.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nmtkit.checkpoint import Checkpoint
from nmtkit.errors import UserError
from nmtkit.train.distributed import World, _rank_device, launched_by_torchrun
from tests.conftest import one_line, run_cli
from tests.train.test_train import copy_run, log_records, prepared_run, trained_copy

__all__ = ["prepared_run"]  # the fixture, shared with test_train

ROOT = Path(__file__).resolve().parents[2]
# 12 updates of 2 micro-batches; validated and saved every 4; a log record per update.
SETTINGS = ["--set=model.dropout=0", "--set=train.accum_steps=2", "--set=train.valid_every=4"]
SETTINGS += ["--set=train.log_every=1", "--set=train.max_steps=12"]
# fp32: N processes equal one to the last digits only there (in bf16 the ranks' gradients
# are summed in bf16, which rounds differently from one process's accumulation)
SETTINGS += ["--set=train.precision=fp32"]
TIMEOUT = 180  # seconds: far more than any of these runs takes; reaching it means a hang


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    """`python ARGS` from the repository, stderr captured, with these environment variables."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a hung job can be killed as a whole
    )


def launch(
    recipe: Path, nproc: int, *extra: str, fault: str = "", fault_rank: int | None = None
) -> subprocess.Popen[str]:
    """Start training `recipe`: 1 process, or `nproc` under torchrun; with a fault from
    tests/faults.py (in rank `fault_rank` only, when given)."""
    torchrun = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    args = [*(torchrun if nproc > 1 else []), "-m", "tests.faults", "train", str(recipe)]
    rank = "" if fault_rank is None else str(fault_rank)
    return spawn(*args, *SETTINGS, *extra, NMTKIT_FAULT=fault, NMTKIT_FAULT_RANK=rank)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for the job; its exit code and stderr. A job still running after TIMEOUT hangs:
    kill it and fail."""
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the job did not end within {TIMEOUT}s")
    return proc.returncode, stderr


def assert_no_processes_left(recipe: Path) -> None:
    """No process of the job (launcher or rank) is alive; they may take a moment to be reaped."""
    deadline = time.time() + 10
    while True:
        found = subprocess.run(["pgrep", "-f", str(recipe)], capture_output=True, text=True)
        if not found.stdout.strip() or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not found.stdout.strip(), f"processes left behind: {found.stdout}"


def records(run: Path) -> list[dict]:
    lines = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_same_training(expected: Path, actual: Path) -> None:
    """Two runs made the same updates on the same global batches: the same log records (token
    counts exactly, losses to the printed precision), data position and steps, parameters and
    optimizer state within 1e-5."""
    want, got = records(expected), records(actual)
    assert [(r["kind"], r["step"], r.get("tgt_tokens")) for r in got] == [
        (r["kind"], r["step"], r.get("tgt_tokens")) for r in want
    ]
    for a, b in zip(want, got, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-5), (a, b)
        if a["kind"] == "valid":
            assert (b["bleu"], b["chrf"], b["best_step"]) == (a["bleu"], a["chrf"], a["best_step"])
    x = Checkpoint.read(expected / "checkpoints" / "last.pt")
    y = Checkpoint.read(actual / "checkpoints" / "last.pt")
    assert x.training is not None and y.training is not None
    assert (y.step, y.training.sampler) == (x.step, x.training.sampler)
    for name, tensor in x.model.items():
        torch.testing.assert_close(y.model[name], tensor, rtol=0, atol=1e-5, msg=name)
    for i, state in x.training.optimizer["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            other = y.training.optimizer["state"][i][key]
            torch.testing.assert_close(other, state[key], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def single(prepared_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process, uninterrupted, 12 updates. Returns its run directory."""
    return trained_copy(prepared_run, tmp_path_factory.mktemp("dist") / "single", *SETTINGS)


# ---------------------------------------------------------------------------- the batches


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_ranks_share_every_global_batch_exactly(size: int) -> None:
    rng = np.random.default_rng(size)
    for n in (1, 2, 5, 17):
        batch = rng.permutation(100)[:n]
        shares = [World(rank, rank, size).share(batch) for rank in range(size)]
        real = [part for part, weight in shares if weight]
        assert sorted(np.concatenate(real).tolist()) == sorted(batch.tolist())
        assert max(map(len, real)) - min(map(len, real)) <= 1  # balanced
        # A rank without examples still runs (DDP needs its backward) on one, with weight 0.
        assert all(len(part) == 1 and part[0] == batch[0] for part, w in shares if not w)
        assert sum(1 for _, w in shares if w) == min(n, size)


def test_a_world_of_one_is_a_single_process() -> None:
    assert not launched_by_torchrun()
    world = World.from_env(torch.device("cpu"))
    with world:
        assert (world.rank, world.size, world.is_main) == (0, 1, True)
        model = torch.nn.Linear(2, 2)
        assert world.wrap(model) is model
        assert world.agree(True, None) == (True, None)
        assert world.broadcast({"a": 1}) == {"a": 1}
        assert world.gather(3) == [3]
    assert not torch.distributed.is_initialized()


def test_a_bad_torchrun_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"RANK": "one", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x"}
    for name, value in {**env, "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="the torchrun environment is not valid"):
        World.from_env(torch.device("cpu"))


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("mps", "needs CUDA GPUs or the CPU, not mps"),
        ("cuda", f"LOCAL_RANK {torch.cuda.device_count()} but only"),
    ],
)
def test_ranks_need_a_device_of_their_own(device: str, message: str) -> None:
    """A rank's device: cuda:LOCAL_RANK, which must exist (one past the last GPU here: on a
    CPU machine, GPU 0); several processes on MPS are refused."""
    with pytest.raises(UserError, match=message):
        _rank_device(torch.device(device), torch.cuda.device_count())


# ---------------------------------------------------------------------- N processes = one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def start_as(how: str, recipe: Path) -> list[subprocess.Popen[str]]:
    """Two processes, started as a user would: `torchrun --standalone`, `nmtkit train --nproc`,
    or as two one-process nodes meeting at a rendezvous endpoint (the multi-node command)."""
    if how == "torchrun":
        return [launch(recipe, 2)]
    if how == "nproc":
        return [spawn("-m", "nmtkit", "train", str(recipe), "--nproc=2", *SETTINGS)]
    node = ["-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]
    node += ["--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{free_port()}"]
    node += ["--rdzv-id=test", "-m", "nmtkit", "train", str(recipe), *SETTINGS]
    return [spawn(*node), spawn(*node)]


@pytest.mark.parametrize("how", ["torchrun", "nproc", "two nodes"])
def test_two_processes_make_the_updates_of_one(
    single: Path, prepared_run: Path, tmp_path: Path, how: str
) -> None:
    recipe = copy_run(prepared_run, tmp_path / "two")
    ends = [finish(proc) for proc in start_as(how, recipe)]
    assert all(code == 0 for code, _ in ends), ends
    stderr = "".join(err for _, err in ends)
    assert "x 2 processes" in stderr
    assert stderr.count("valid @ 4") == 1  # rank 0 alone reports
    assert stderr.count("training.png") == 1  # and draws the curves
    assert len(list((recipe.parent / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert_same_training(single, recipe.parent / "run")


def test_two_processes_resume_exactly_with_dropout(prepared_run: Path, tmp_path: Path) -> None:
    """With dropout, each rank draws its own masks from a seeded stream that last.pt saves
    per rank: a 2-process run stopped by SIGTERM and resumed on 2 processes ends bit for bit
    where an uninterrupted one does (log records and weights)."""
    dropout = "--set=model.dropout=0.3"
    whole, cut = (copy_run(prepared_run, tmp_path / name) for name in ("whole", "cut"))
    code, stderr = finish(launch(whole, 2, dropout))
    assert code == 0, stderr
    code, stderr = finish(launch(cut, 2, dropout, fault="term:update:6", fault_rank=0))
    assert "stopped by SIGTERM at step 6" in one_line(stderr)
    code, stderr = finish(launch(cut, 2, dropout))
    assert code == 0, stderr
    assert log_records(cut.parent / "run") == log_records(whole.parent / "run")
    x = Checkpoint.read(whole.parent / "run" / "checkpoints" / "last.pt")
    y = Checkpoint.read(cut.parent / "run" / "checkpoints" / "last.pt")
    assert x.step == y.step == 12
    assert y.training is not None and len(y.training.rng) == 2
    for key, tensor in x.model.items():
        assert torch.equal(y.model[key], tensor), key


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_resume_with_another_number_of_processes_continues_the_stream(
    single: Path, prepared_run: Path, tmp_path: Path, first: int, then: int
) -> None:
    """SIGTERM reaches one process (rank 1 of two) in update 7: every rank stops after that
    update, last.pt is saved at step 7, and the run continues on the other process count."""
    recipe = copy_run(prepared_run, tmp_path / "run")
    rank = 1 if first > 1 else None
    code, stderr = finish(launch(recipe, first, fault="term:update:7", fault_rank=rank))
    # One process exits 128 + SIGTERM; torchrun reports its ranks' non-zero exit as 1.
    assert code == (143 if first == 1 else 1), stderr
    assert "stopped by SIGTERM at step 7; saved last.pt" in one_line(stderr)
    assert Checkpoint.read(recipe.parent / "run" / "checkpoints" / "last.pt").step == 7
    code, stderr = finish(launch(recipe, then))
    assert code == 0, stderr
    assert f"was written by {first} process(es), now {then}" in one_line(stderr)
    assert_same_training(single, recipe.parent / "run")


# ------------------------------------------------------------------------- one job, one end


@pytest.mark.parametrize("fault", ["error:update:3", "kill:update:3"])
def test_a_failing_rank_ends_the_whole_job(prepared_run: Path, tmp_path: Path, fault: str) -> None:
    """Rank 1 raises (or is SIGKILLed, as by the OOM killer) while rank 0 waits for it in a
    collective: the job exits with an error at once, no rank is left behind."""
    recipe = copy_run(prepared_run, tmp_path / "run")
    started = time.time()
    code, stderr = finish(launch(recipe, 2, fault=fault, fault_rank=1))
    assert code != 0
    assert time.time() - started < 60, "the surviving rank was not stopped promptly"
    assert "rank : 1" in " ".join(stderr.split())  # torchrun names the rank that failed
    assert_no_processes_left(recipe)


def test_a_signal_to_the_launcher_saves_and_ends_every_rank(
    prepared_run: Path, tmp_path: Path
) -> None:
    """`nmtkit train --nproc 2`, then SIGTERM to the launcher (what a scheduler sends): the
    ranks stop together, rank 0 saves last.pt, the launcher exits 143, and the run resumes."""
    recipe = copy_run(prepared_run, tmp_path / "run")
    run = recipe.parent / "run"
    more = "--set=train.max_steps=100000"
    proc = spawn("-m", "nmtkit", "train", str(recipe), "--nproc=2", *SETTINGS, more)
    log = run / "logs" / "metrics.jsonl"
    deadline = time.time() + TIMEOUT
    while proc.poll() is None and time.time() < deadline and not log.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code, stderr = finish(proc)
    assert code == 143, stderr
    step = Checkpoint.read(run / "checkpoints" / "last.pt").step
    assert f"stopped by SIGTERM at step {step}; saved last.pt" in one_line(stderr)
    assert records(run)[-1]["step"] <= step
    assert_no_processes_left(recipe)
    result = run_cli("train", recipe, *SETTINGS, f"--set=train.max_steps={step + 2}")
    assert result.exit_code == 0, result.stderr
    assert f"resuming from {run / 'checkpoints' / 'last.pt'}: step {step}" in one_line(
        result.stderr
    )


def test_nproc_checks_the_run_before_starting_processes(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    source = "data: {source: {synthetic: {}}}"
    recipe.write_text(f"name: x\nrun_dir: {tmp_path / 'run'}\n{source}\n")
    result = run_cli("train", recipe, "--nproc", "2")
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith("error: no prepared data")


def test_nproc_is_refused_under_torchrun(
    prepared_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = copy_run(prepared_run, tmp_path / "run")
    for name, value in [("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "2")]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "1")
    result = run_cli("train", recipe, "--nproc", "2")
    assert result.exit_code == 2
    assert "do not use it under torchrun" in one_line(result.stderr)
