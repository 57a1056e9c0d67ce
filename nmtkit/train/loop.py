"""`nmtkit train`: train(recipe), read top to bottom: setup, resume, loop, validate, stop.

    result = train(recipe)                 # continues from RUN_DIR/checkpoints/last.pt if present
    result = train(recipe, restart=True)   # starts over

One update = `accum_steps` batches; `step` counts updates. Every `valid_every` updates the model
is validated (loss, perplexity, greedy BLEU/chrF), `last.pt` is written, `best.pt` follows the
best value of `early_stopping.metric`, and the best `keep_checkpoints` are kept as
`step-NNNNNNN.pt`. Training stops at `max_steps`, `max_epochs`, `max_time` (wall clock summed
over resumes), when early stopping runs out of patience, on SIGINT/SIGTERM (after saving
`last.pt`), or when the loss is not finite several updates in a row (nothing is saved then).
On the CPU, an interrupted and resumed run ends with exactly the parameters and metrics log of
an uninterrupted one, also after SIGKILL at any moment (tests/test_interruption.py): a resumed
run removes unfinished temporary files, redoes the links of its last.pt and drops log records
written after it. While training, the run directory is locked (`RUN_DIR/.lock`): a second
`nmtkit train` on the same run is refused.

Under torchrun (train/distributed.py) every rank runs this same loop on its share of each
global batch; rank 0 alone validates, logs and writes, and the collectives below (`world.*`)
keep the ranks on one course. A world of one has no collectives: the loop is then exactly the
single-process one.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import yaml

from nmtkit import console
from nmtkit.data.batching import Batch, BatchSampler, collate
from nmtkit.data.prepare import PreparedData, data_fingerprint
from nmtkit.data.shards import Shard
from nmtkit.data.tokenizer import PAD_ID
from nmtkit.device import autocast_for, pick_device
from nmtkit.errors import UserError
from nmtkit.models import Seq2Seq, build_model
from nmtkit.paths import RunPaths, atomic_write_text, run_lock, sweep_temporaries
from nmtkit.recipe import Recipe
from nmtkit.train import checkpoint as ckpt
from nmtkit.train.distributed import World, no_sync
from nmtkit.train.loss import projected_loss
from nmtkit.train.optim import HIGHER_IS_BETTER, Schedule, build_optimizer
from nmtkit.train.progress import LossWindow, MetricsLog, TrainProgress
from nmtkit.train.validate import Validator

MAX_BAD_LOSSES = 5  # consecutive non-finite losses that stop training
STOP_KEYS = ("max_steps", "max_epochs", "max_time", "early_stopping")  # may change on resume


@dataclass
class TrainState:
    """Everything besides tensors and sampler position that a checkpoint must restore."""

    step: int = 0
    elapsed: float = 0.0  # seconds of training, summed over resumes
    best_value: float | None = None
    best_step: int | None = None
    bad_validations: int = 0
    nan_skipped: int = 0
    last_valid_step: int = 0
    last_valid_value: float | None = None  # the metric at last_valid_step


@dataclass
class TrainResult:
    step: int
    stop_reason: str
    best_value: float | None
    best_step: int | None
    elapsed: float
    signal: int | None = None


@dataclass
class _Run:
    """The live objects of one training run."""

    recipe: Recipe
    paths: RunPaths
    data: PreparedData
    world: World
    device: torch.device
    model: Seq2Seq
    ddp: torch.nn.Module  # the model as trained: DistributedDataParallel(model) under torchrun
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    sampler: BatchSampler
    shards: tuple[Shard, Shard]
    validator: Validator
    keeper: ckpt.CheckpointKeeper
    log: MetricsLog
    amp: contextlib.AbstractContextManager[Any]
    state: TrainState = field(default_factory=TrainState)
    window: LossWindow = field(default_factory=LossWindow)  # updates since the last log record


def train(recipe: Recipe, *, restart: bool = False) -> TrainResult:
    """Train the recipe's model on its prepared data (see the module docstring)."""
    device = pick_device(recipe.train.device, setting="train.device")
    with World.from_env(device) as world:
        console.set_rank(world.rank)
        if not world.is_main:  # rank 0 holds the lock for all
            return _train(recipe, restart=restart, world=world)
        with run_lock(recipe.run_path, "train"):
            return _train(recipe, restart=restart, world=world)


def _train(recipe: Recipe, *, restart: bool, world: World) -> TrainResult:
    run = _setup(recipe, world)
    _start(run, restart=restart)
    cfg = recipe.train
    ranks = f" x {world.size} processes" if world.size > 1 else ""
    console.info(
        f"training {sum(p.numel() for p in run.model.parameters()):,} parameters on "
        f"{run.device}{ranks} ({cfg.precision}): {len(run.shards[0]):,} pairs, "
        f"{run.sampler.batches_per_epoch():,} batches of ≤{cfg.batch_tokens:,} tokens per epoch"
    )
    # A signal during the final validation and save is noted and ignored: they complete.
    with _StopSignals() as signals:
        with TrainProgress(cfg.max_steps, cfg.max_time, enabled=world.is_main) as bar:
            reason, stopped_by = _loop(run, signals, bar)
        if stopped_by:
            _save(run)
            name = signal.Signals(stopped_by).name
            console.info(
                f"stopped by {name} at step {run.state.step}; saved last.pt; "
                "run the same command to continue"
            )
            reason = f"stopped by {name}"
        else:
            if run.state.last_valid_step != run.state.step:  # end on a validated, saved model
                _validate(run)
            console.info(
                f"stopped at step {run.state.step}: {reason}; best "
                f"{cfg.early_stopping.metric} {_fmt(run.state.best_value)} at step "
                f"{run.state.best_step} ({run.paths.checkpoints / 'best.pt'})"
            )
    s = run.state
    return TrainResult(s.step, reason, s.best_value, s.best_step, s.elapsed, stopped_by)


def _start(run: _Run, *, restart: bool) -> None:
    """Tidy the run directory (rank 0), start over or resume (every rank), check that the
    ranks agree, and wrap the model for training."""
    world = run.world
    if world.is_main:
        for folder in (run.paths.root, run.paths.checkpoints, run.paths.logs):
            for stale in sweep_temporaries(folder):  # a killed run's unfinished writes
                console.info(f"removed {stale.name}, an unfinished write of an interrupted run")
        if restart:
            run.keeper.clear()
            run.log.path.unlink(missing_ok=True)
    world.barrier()  # rank 0 has tidied up (or cleared) the checkpoints the others may read
    if not restart and run.keeper.last.exists():
        _resume(run)
    world.check_same(
        (run.state.step, run.sampler.state_dict()),
        f"is not where rank 0 is (step, data position); does every node see the same "
        f"{run.keeper.last}? The run directory must be on a filesystem that all nodes share",
    )
    run.ddp = world.wrap(run.model)
    if world.is_main:
        atomic_write_text(run.paths.recipe, run.recipe.to_yaml())
        run.log.truncate_after(run.state.step)


def _setup(recipe: Recipe, world: World) -> _Run:
    cfg = recipe.train
    paths = recipe.paths
    data = open_prepared_data(recipe, paths)
    device = world.device
    torch.manual_seed(cfg.seed)
    tok = data.manifest["tokenizer"]
    model = build_model(recipe.model, tok["src_vocab_size"], tok["tgt_vocab_size"]).to(device)
    world.seed(cfg.seed)  # ranks > 0 draw their own dropout masks
    optimizer = build_optimizer(model.parameters(), cfg)
    shards = data.shards("train")
    return _Run(
        recipe=recipe,
        paths=paths,
        data=data,
        world=world,
        device=device,
        model=model,
        ddp=model,
        optimizer=optimizer,
        schedule=Schedule(optimizer, cfg),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16"),
        sampler=BatchSampler(
            shards[0].lengths, shards[1].lengths, batch_tokens=cfg.batch_tokens, seed=cfg.seed
        ),
        shards=shards,
        validator=Validator(
            data,
            batch_tokens=cfg.batch_tokens,
            decode_batch_tokens=recipe.decode.batch_tokens,
            max_len_ratio=recipe.decode.max_len_ratio,
            device=device,
        ),
        keeper=ckpt.CheckpointKeeper(
            paths.checkpoints,
            keep=cfg.keep_checkpoints,
            higher_is_better=HIGHER_IS_BETTER[cfg.early_stopping.metric],
        ),
        log=MetricsLog(paths.logs / "metrics.jsonl"),
        amp=autocast_for(device, cfg.precision),
    )


def _loop(run: _Run, signals: _StopSignals, bar: TrainProgress) -> tuple[str, int | None]:
    """Updates until a stop criterion holds or a signal arrives (on any rank); returns the
    stop reason and the signal."""
    cfg, state, world = run.recipe.train, run.state, run.world
    batches = iter(run.sampler)
    started = time.perf_counter() - state.elapsed
    bad_losses = 0
    while True:
        state.elapsed = time.perf_counter() - started
        reason = _stop_reason(run)
        stop, signum = world.agree(bool(reason), signals.received)  # rank 0's clock decides
        if stop or signum:
            return reason or "rank 0 stopped", signum
        global_batches = [next(batches) for _ in range(cfg.accum_steps)]
        # Counted from the lengths on the CPU: no device sync, and the same on every rank.
        tokens = sum(int(run.sampler.tgt_lens[i].sum()) + len(i) for i in global_batches)
        micro = [(collate(*run.shards, part), w) for part, w in map(world.share, global_batches)]
        lr = run.schedule.apply(state.step + 1)
        sums = _update(run, micro, tokens)
        if sums is None:
            bad_losses += 1
            state.nan_skipped += 1
            console.info(f"[yellow]update {state.step + 1}: loss is not finite; skipped[/]")
            if bad_losses >= MAX_BAD_LOSSES:
                raise UserError(
                    f"training diverged: the loss was not finite {bad_losses} updates in a row "
                    f"after step {state.step}; the last checkpoint is kept. Lower train.lr, "
                    "set train.clip_norm, or use precision fp32"
                )
            continue
        bad_losses = 0
        state.step += 1
        elapsed = time.perf_counter() - started
        run.window.add(sums[0], sums[1], tokens)
        bar.update(
            step=state.step,
            epoch=run.sampler.epoch,
            lr=lr,
            loss=sums[0],
            nll=sums[1],
            tokens=tokens,
            elapsed=elapsed,
        )
        if state.step % cfg.log_every == 0 and world.is_main:
            run.log.write(
                run.window.record(
                    step=state.step,
                    epoch=run.sampler.epoch,
                    lr=lr,
                    elapsed=elapsed,
                    nan_skipped=state.nan_skipped,
                )
            )
            run.window = LossWindow()
        if state.step % cfg.valid_every == 0:
            state.elapsed = elapsed
            _validate(run)


def _update(
    run: _Run, micro: list[tuple[Batch, float]], tokens: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """One optimizer update over this rank's parts of the micro-batches (each with its loss
    weight, see World.share); None (nothing updated, on every rank) if the loss is not finite.
    `tokens` counts the target tokens of the whole global update. Returns the smoothed loss
    and NLL summed over all ranks, as device tensors."""
    cfg = run.recipe.train
    # DDP averages gradients over the ranks: per rank, divide by the tokens per rank.
    per_rank = tokens / run.world.size
    loss_sum = torch.zeros((), device=run.device)
    nll_sum = torch.zeros((), device=run.device)
    for i, (batch, weight) in enumerate(micro):
        if run.device.type == "cuda":  # page-locked host memory makes the copy asynchronous
            batch = batch.pin_memory()
        batch = batch.to(run.device, non_blocking=True)
        real = batch.tgt_out != PAD_ID
        # Gradients are all-reduced once per update, in the last micro-batch's backward.
        with no_sync(run.ddp) if i < len(micro) - 1 else contextlib.nullcontext():
            with run.amp:
                hidden = run.ddp(
                    batch.src, batch.src_lens, batch.tgt_in, positions=real, project=False
                )
                sums = projected_loss(
                    hidden, run.model.decoder.output, batch.tgt_out[real], cfg.label_smoothing
                )
            run.scaler.scale(sums.loss * weight / per_rank).backward()
        loss_sum += sums.loss.detach() * weight
        nll_sum += sums.nll * weight
    if run.world.size > 1:
        loss_sum, nll_sum = run.world.sum(torch.stack([loss_sum, nll_sum]))
    if not bool(torch.isfinite(loss_sum)):  # the one host sync per update
        run.optimizer.zero_grad(set_to_none=True)
        return None
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_norm or float("inf"))
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_sum, nll_sum


def _validate(run: _Run) -> None:
    """Validate (rank 0); update best, patience and the plateau schedule (every rank); save;
    log."""
    state, stopping, world = run.state, run.recipe.train.early_stopping, run.world
    result = run.validator.run(run.model, run.amp) if world.is_main else None
    value = world.broadcast(result.metric(stopping.metric) if result else None)
    improved = state.best_value is None or (
        value > state.best_value if HIGHER_IS_BETTER[stopping.metric] else value < state.best_value
    )
    if improved:
        state.best_value, state.best_step, state.bad_validations = value, state.step, 0
    else:
        state.bad_validations += 1
    run.schedule.observe(value)
    state.last_valid_step, state.last_valid_value = state.step, value
    if result is None:  # not rank 0
        _save(run)
        return
    # The record goes first: if the process dies before the checkpoint is whole, the resumed
    # run drops it with the other records after its checkpoint and writes it again.
    run.log.write(
        {
            "kind": "valid",
            "step": state.step,
            "loss": round(result.loss, 5),
            "ppl": round(result.ppl, 3),
            "bleu": round(result.bleu, 2),
            "chrf": round(result.chrf, 2),
            "best": state.best_value,
            "best_step": state.best_step,
            "samples": result.samples,
        }
    )
    _save(run, value=value, best=improved)
    mark = "[green]new best[/]" if improved else f"no improvement ({state.bad_validations})"
    console.info(
        f"valid @ {state.step}: loss {result.loss:.3f}  ppl {result.ppl:.2f}  "
        f"BLEU {result.bleu:.2f}  chrF {result.chrf:.2f}  {mark}"
    )
    for sample in result.samples[:1]:
        console.info(f"  src  {sample['src']}\n  ref  {sample['ref']}\n  hyp  {sample['hyp']}")


def _stop_reason(run: _Run) -> str:
    cfg, state = run.recipe.train, run.state
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return f"max_steps={cfg.max_steps} reached"
    if cfg.max_epochs is not None and run.sampler.epochs_done() >= cfg.max_epochs:
        return f"max_epochs={cfg.max_epochs} reached"
    if cfg.max_time is not None and state.elapsed >= cfg.max_time:
        return f"max_time={cfg.max_time:g}s reached"
    patience = cfg.early_stopping.patience
    if patience is not None and state.bad_validations >= patience:
        return (
            f"early stopping: {cfg.early_stopping.metric} did not improve in {patience} validations"
        )
    return ""


# ------------------------------------------------------------------------------ setup helpers


def open_prepared_data(recipe: Recipe, paths: RunPaths) -> PreparedData:
    """The run's prepared data, checked to be current with the recipe and to have `valid`."""
    if not paths.manifest.exists():
        raise UserError(f"no prepared data in {paths.data}; run `nmtkit prepare RECIPE` first")
    data = PreparedData.open(paths.data)
    if data.manifest.get("fingerprint") != data_fingerprint(recipe):
        raise UserError(
            f"the prepared data in {paths.data} no longer matches the recipe's data/tokenizer "
            "sections or input files; run `nmtkit prepare RECIPE` again"
        )
    if "valid" not in data.manifest["splits"]:
        raise UserError("training needs a valid split; add one to data.source")
    return data


# ----------------------------------------------------------------------- checkpoint contents


def _save(run: _Run, *, value: float | None = None, best: bool = False) -> None:
    """Write last.pt (rank 0) with every rank's random state: a collective, so every rank
    calls it at the same point."""
    rng = run.world.gather(ckpt.rng_state())
    if run.world.is_main:
        run.keeper.save(_payload(run, rng), step=run.state.step, value=value, best=best)


def _payload(run: _Run, rng: list[dict[str, Any]]) -> dict[str, Any]:
    """The self-contained checkpoint: enough to resume training or to translate raw text.
    `rng` holds the random states of the ranks (one in a world of one)."""
    tok = run.data.manifest["tokenizer"]
    return {
        "step": run.state.step,
        "state": asdict(run.state),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "scaler": run.scaler.state_dict(),
        "sampler": run.sampler.state_dict(),
        "log_window": run.window.state_dict(),
        "rng": rng[0],
        **({"rng_ranks": rng} if len(rng) > 1 else {}),
        "recipe": run.recipe.to_yaml(),
        "tokenizer": {
            "joint": tok["joint"],
            "src": run.data.tokenizer("src").model_bytes,
            "tgt": run.data.tokenizer("tgt").model_bytes,
            "src_sha256": tok["src_sha256"],
            "tgt_sha256": tok["tgt_sha256"],
        },
        "vocab_size": {"src": tok["src_vocab_size"], "tgt": tok["tgt_vocab_size"]},
        "langs": {"src": run.data.manifest["src_lang"], "tgt": run.data.manifest["tgt_lang"]},
    }


def _resume(run: _Run) -> None:
    """Restore every part from last.pt; model and tokenizer must be the ones it was trained on."""
    path = run.keeper.last
    payload = ckpt.load_checkpoint(path, map_location=run.device)
    missing = [key for key in ckpt.TRAINING_STATE if key not in payload]
    if missing:
        raise UserError(
            f"{path} cannot be resumed: it holds no training state ({', '.join(missing)}); an "
            "averaged checkpoint is for translating only. Use --restart to start over"
        )
    saved = Recipe.model_validate(yaml.safe_load(payload["recipe"]))
    if saved.model != run.recipe.model:
        raise UserError(
            f"{path} was trained with another model section than the recipe's; use "
            "--restart to start over, or another run_dir"
        )
    tok = run.data.manifest["tokenizer"]
    if (payload["tokenizer"]["src_sha256"], payload["tokenizer"]["tgt_sha256"]) != (
        tok["src_sha256"],
        tok["tgt_sha256"],
    ):
        raise UserError(
            f"{path} was trained with another tokenizer than the prepared data in "
            f"{run.data.root}; use --restart to train on the new data"
        )
    now, before = run.recipe.train.model_dump(), saved.train.model_dump()
    changed = [k for k in now if k not in STOP_KEYS and now[k] != before[k]]
    if changed:
        console.info(
            f"[yellow]note: train settings changed since the checkpoint "
            f"({', '.join(changed)}): the continuation differs from the original run[/]"
        )
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    run.schedule.load_state_dict(payload["schedule"])
    run.scaler.load_state_dict(payload["scaler"])
    run.sampler.load_state_dict(payload["sampler"])
    run.window.load_state_dict(payload["log_window"])
    run.state = TrainState(**payload["state"])
    s, world = run.state, run.world
    rngs = payload.get("rng_ranks", [payload["rng"]])
    if len(rngs) == world.size:
        ckpt.set_rng_state(rngs[world.rank])
    else:  # rank 0 continues rank 0's stream; the others get new ones, reproducibly
        console.info(
            f"note: {path} was written by {len(rngs)} process(es), now {world.size}: the data "
            "stream continues exactly, the dropout masks of ranks > 0 do not"
        )
        ckpt.set_rng_state(rngs[0])
        world.seed(run.recipe.train.seed, s.step)
    if world.is_main and s.last_valid_step == s.step and s.last_valid_value is not None:
        # Killed after writing last.pt but before linking best.pt / the step file? Redo that.
        run.keeper.finish(step=s.step, value=s.last_valid_value, best=s.best_step == s.step)
    console.info(
        f"resuming from {path}: step {s.step}, epoch {run.sampler.epoch} (batch "
        f"{run.sampler.position}), best {run.recipe.train.early_stopping.metric} "
        f"{_fmt(s.best_value)} at step {s.best_step}, {s.elapsed:.0f}s trained so far; restored "
        "model, optimizer, schedule, RNG states and data position"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class _StopSignals:
    """SIGINT/SIGTERM set a flag checked between updates; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> _StopSignals:
        with contextlib.suppress(ValueError):  # not the main thread: keep default handling
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
