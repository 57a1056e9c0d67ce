"""`nmtkit train`: train(recipe), read top to bottom: setup, resume, loop, validate, stop.

One update = `accum_steps` batches; `step` counts updates. Every `valid_every` updates the model
is validated, `last.pt` is written, `best.pt` follows the best `early_stopping.metric`, and the
best `keep_checkpoints` (and the last `average_last`) are kept as `step-NNNNNNN.pt`; at the end,
`average_last: N` writes their average as `avg.pt`, validated and logged (kind "average").
Training stops at `max_steps`, `max_epochs`, `max_time` (wall clock summed over resumes), when
early stopping runs out of patience, on SIGINT/SIGTERM (after saving `last.pt`), or when the
loss is not finite MAX_BAD_LOSSES updates in a row (nothing is saved then). The run directory
is locked while training (`RUN_DIR/.lock`; a `data_dir` outside it is locked shared, so that
runs train side by side on it and a `prepare` of it is refused). Under torchrun every rank runs
this loop on its share of each global batch (`train.distributed`); in a world of one it is
exactly the single-process loop.
Rank 0 mirrors every log record to TensorBoard (`train.tensorboard`) and, however training
ends, draws the log as `reports/training.png`.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from typing import Any

import torch

from nmtkit import console
from nmtkit.data.batching import Batch, collate
from nmtkit.data.tokenizer import PAD_ID
from nmtkit.device import pick_device, training_precision
from nmtkit.errors import UserError
from nmtkit.evaluate.curves import write_training_plot
from nmtkit.paths import data_lock, run_lock
from nmtkit.recipe import Recipe
from nmtkit.train.distributed import World, no_sync
from nmtkit.train.loss import projected_loss
from nmtkit.train.optim import HIGHER_IS_BETTER, improves
from nmtkit.train.progress import LossWindow, TrainProgress
from nmtkit.train.run import TrainingRun, average_last, fmt_value, save, setup, start
from nmtkit.train.signals import StopSignals
from nmtkit.train.tensorboard import TensorBoardLog

MAX_BAD_LOSSES = 5  # consecutive non-finite losses that stop training
DIGITS = {"loss": 5, "ppl": 3, "bleu": 2, "chrf": 2}  # decimals of the "valid" log record


@dataclass
class TrainResult:
    step: int
    stop_reason: str
    best_value: float | None
    best_step: int | None
    elapsed: float
    signal: int | None = None


def train(recipe: Recipe, *, restart: bool = False) -> TrainResult:
    """Train the recipe's model on its prepared data (see the module docstring)."""
    device = pick_device(recipe.train.device, setting="train.device")
    recipe = _resolve_precision(recipe, device)
    with World.from_env(device) as world:
        console.set_rank(world.rank)
        with contextlib.ExitStack() as locks:
            if world.is_main:  # rank 0 holds the locks for all
                locks.enter_context(run_lock(recipe.run_path, "train"))
                locks.enter_context(data_lock(recipe.paths, "train", shared=True))
            return _train(recipe, restart=restart, world=world)


def _resolve_precision(recipe: Recipe, device: torch.device) -> Recipe:
    """The recipe with `train.precision: auto` resolved for `device` (`device.training_precision`),
    said once; the resolved recipe and the checkpoints then hold the choice. A run resumed on
    a machine where auto resolves differently continues in the new precision (with the note
    that train settings changed)."""
    chosen = training_precision(recipe.train.precision, device)
    if recipe.train.precision == "auto":
        has = "with" if chosen == "bf16" else "without"
        why = {"cpu": f"a CPU {has} AMX", "cuda": f"a GPU {has} bf16"}.get(device.type, device.type)
        console.info(f"train.precision auto: {chosen} ({why}; set train.precision to choose)")
    return recipe.model_copy(
        update={"train": recipe.train.model_copy(update={"precision": chosen})}
    )


def _train(recipe: Recipe, *, restart: bool, world: World) -> TrainResult:
    run = setup(recipe, world)
    start(run, restart=restart)
    cfg, s = recipe.train, run.state
    ranks = f" x {world.size} processes" if world.size > 1 else ""
    console.info(
        f"training {sum(p.numel() for p in run.model.parameters()):,} parameters on "
        f"{run.device}{ranks} ({cfg.precision}): {len(run.shards[0]):,} pairs, "
        f"{run.sampler.batches_per_epoch():,} batches of ≤{cfg.batch_tokens:,} tokens per epoch"
    )
    # A signal during the final validation and save is noted and ignored: they complete.
    try:
        with StopSignals() as signals, _open_board(run, restart=restart) as board:
            with TrainProgress(cfg.max_steps, cfg.max_time, enabled=world.is_main) as bar:
                reason, stopped_by = _loop(run, signals, bar, board)
            reason = _finish(run, board, reason, stopped_by)
    finally:  # also when training diverged: the curves show how
        if world.is_main:
            write_training_plot(run.paths)
    return TrainResult(s.step, reason, s.best_value, s.best_step, s.elapsed, stopped_by)


def _finish(run: TrainingRun, board: TensorBoardLog, reason: str, stopped_by: int | None) -> str:
    """Save after a signal, else end on a validated, saved model; say why it stopped."""
    s, metric = run.state, run.recipe.train.early_stopping.metric
    if stopped_by:
        save(run)
        reason = f"stopped by {signal.Signals(stopped_by).name}"
        console.info(f"{reason} at step {s.step}; saved last.pt; run the same command to continue")
        return reason
    if s.last_valid_step != s.step:
        _validate(run, board)
    console.info(
        f"stopped at step {s.step}: {reason}; best {metric} {fmt_value(s.best_value)} at step "
        f"{s.best_step} ({run.paths.checkpoints / 'best.pt'})"
    )
    if run.recipe.train.average_last and run.world.is_main:
        record = average_last(run)
        if record is not None:
            run.log.write(record)
            board.write(record)
    return reason


def _open_board(run: TrainingRun, *, restart: bool) -> TensorBoardLog:
    """Rank 0's TensorBoard log, continuing after the resumed step; inactive elsewhere."""
    if not (run.world.is_main and run.recipe.train.tensorboard):
        return TensorBoardLog()
    return TensorBoardLog.open(run.paths.tensorboard, resume_step=run.state.step, restart=restart)


def _loop(
    run: TrainingRun, signals: StopSignals, bar: TrainProgress, board: TensorBoardLog
) -> tuple[str, int | None]:
    """Updates until a stop criterion holds or a signal arrives on any rank: (reason, signal)."""
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
        elapsed, epoch = time.perf_counter() - started, run.sampler.epoch
        run.window.add(*sums, tokens)
        bar.update(state.step, epoch, lr, elapsed, *sums, tokens)
        if state.step % cfg.log_every == 0 and world.is_main:
            record = run.window.record(state.step, epoch, lr, elapsed, state.nan_skipped)
            run.log.write(record)
            board.write(record)
            run.window = LossWindow()
        if state.step % cfg.valid_every == 0:
            state.elapsed = elapsed
            _validate(run, board)


def _update(
    run: TrainingRun, micro: list[tuple[Batch, float]], tokens: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """One optimizer update over this rank's parts of the micro-batches (each with its loss
    weight, see World.share); None (nothing updated, on every rank) if the loss is not finite.
    `tokens` counts the target tokens of the whole global update. Returns the smoothed loss
    and NLL summed over all ranks, as device tensors."""
    cfg = run.recipe.train
    # DDP averages gradients over the ranks: per rank, divide by the tokens per rank.
    per_rank = tokens / run.world.size
    loss_sum, nll_sum = torch.zeros((), device=run.device), torch.zeros((), device=run.device)
    for i, (batch, weight) in enumerate(micro):
        if run.device.type == "cuda":  # page-locked host memory makes the copy asynchronous
            batch = batch.pin_memory()
        batch = batch.to(run.device, non_blocking=True)
        real = batch.tgt_out != PAD_ID
        # Gradients are all-reduced once per update, in the last micro-batch's backward.
        with no_sync(run.ddp) if i < len(micro) - 1 else contextlib.nullcontext():
            with run.weights.context():
                hidden = run.ddp(
                    batch.src, batch.src_lens, batch.tgt_in, positions=real, project=False
                )
                output = run.weights.compute.decoder.output
                sums = projected_loss(hidden, output, batch.tgt_out[real], cfg.label_smoothing)
            run.scaler.scale(sums.loss * weight / per_rank).backward()
        loss_sum += sums.loss.detach() * weight
        nll_sum += sums.nll * weight
    if run.world.size > 1:
        loss_sum, nll_sum = run.world.sum(torch.stack([loss_sum, nll_sum]))
    if not bool(torch.isfinite(loss_sum)):  # the one host sync per update
        run.weights.discard_grads()
        run.optimizer.zero_grad(set_to_none=True)
        return None
    run.weights.grads_to_master()  # a bf16 copy's gradients, as fp32 (else nothing)
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_norm or float("inf"))
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.weights.pull()
    return loss_sum, nll_sum


def _validate(run: TrainingRun, board: TensorBoardLog) -> None:
    """Validate (rank 0); update best, patience and the plateau schedule (every rank); save, log."""
    state, stopping, world = run.state, run.recipe.train.early_stopping, run.world
    result = run.validator.run(run.model, run.amp) if world.is_main else None
    value = world.broadcast(result.metric(stopping.metric) if result else None)
    improved = improves(value, state.best_value, HIGHER_IS_BETTER[stopping.metric])
    if improved:
        state.best_value, state.best_step, state.bad_validations = value, state.step, 0
    else:
        state.bad_validations += 1
    run.schedule.observe(value)
    state.last_valid_step, state.last_valid_value = state.step, value
    if result is None:  # not rank 0
        save(run)
        return
    # The record goes first: if the process dies before the checkpoint is whole, the resumed
    # run drops it with the other records after its checkpoint and writes it again.
    record: dict[str, Any] = {"kind": "valid", "step": state.step}
    record.update({key: round(getattr(result, key), digits) for key, digits in DIGITS.items()})
    record.update(best=state.best_value, best_step=state.best_step, samples=result.samples)
    record.update(elapsed=round(state.elapsed, 1))  # training wall clock before validating
    run.log.write(record)
    board.write(record)
    save(run, value=value, best=improved)
    mark = "[green]new best[/]" if improved else f"no improvement ({state.bad_validations})"
    console.info(
        f"valid @ {state.step}: loss {result.loss:.3f}  ppl {result.ppl:.2f}  "
        f"BLEU {result.bleu:.2f}  chrF {result.chrf:.2f}  {mark}"
    )
    for sample in result.samples[:1]:
        console.info(f"  src  {sample['src']}\n  ref  {sample['ref']}\n  hyp  {sample['hyp']}")


def _stop_reason(run: TrainingRun) -> str:
    cfg, state = run.recipe.train, run.state
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return f"max_steps={cfg.max_steps} reached"
    if cfg.max_epochs is not None and run.sampler.epochs_done() >= cfg.max_epochs:
        return f"max_epochs={cfg.max_epochs} reached"
    if cfg.max_time is not None and state.elapsed >= cfg.max_time:
        return f"max_time={cfg.max_time:g}s reached"
    stop = cfg.early_stopping
    if stop.patience is not None and state.bad_validations >= stop.patience:
        return f"early stopping: {stop.metric} did not improve in {stop.patience} validations"
    return ""
