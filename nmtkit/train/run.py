"""One training run's live objects (`setup`), and how they are saved (`save`) and restored
(`start`, `resume`): model, optimizer, schedule, gradient scaler, sampler position, log window,
counters and every rank's random state, so that on the CPU a resumed run ends exactly as an
uninterrupted one, also after SIGKILL at any moment (tests/train/test_interruption.py). The
checkpoint format and the "can this run resume from it" checks are `nmtkit.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from nmtkit import console
from nmtkit.checkpoint import (
    Checkpoint,
    TrainingState,
    TrainState,
    average_checkpoints,
    rng_state,
    set_rng_state,
)
from nmtkit.data.batching import BatchSampler
from nmtkit.data.lexical import LexicalTable
from nmtkit.data.manifest import PreparedData
from nmtkit.data.shards import Shard
from nmtkit.data.tokenizer import TokenizerModels
from nmtkit.device import autocast_for
from nmtkit.models import Seq2Seq, build_model
from nmtkit.paths import RunPaths, atomic_write_text, sweep_temporaries
from nmtkit.recipe import Recipe
from nmtkit.train.distributed import World
from nmtkit.train.keeper import CheckpointKeeper
from nmtkit.train.mixed import StepWeights
from nmtkit.train.optim import HIGHER_IS_BETTER, Schedule, build_optimizer
from nmtkit.train.progress import LossWindow, MetricsLog
from nmtkit.train.validate import Validator

STOP_KEYS = ("max_steps", "max_epochs", "max_time", "early_stopping")  # may change on resume


@dataclass
class TrainingRun:
    """The live objects of one training run."""

    recipe: Recipe
    paths: RunPaths
    data: PreparedData
    world: World
    device: torch.device
    model: Seq2Seq
    weights: StepWeights  # what computes an update: the model, or its bf16 copy on a CPU
    ddp: torch.nn.Module  # weights.compute as trained: DistributedDataParallel(...) under torchrun
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    sampler: BatchSampler
    shards: tuple[Shard, Shard]
    validator: Validator
    keeper: CheckpointKeeper
    log: MetricsLog
    amp: contextlib.AbstractContextManager[Any]  # validation's autocast (or nothing)
    tokenizers: TokenizerModels  # read once at setup: every checkpoint stores these bytes
    state: TrainState = field(default_factory=TrainState)
    window: LossWindow = field(default_factory=LossWindow)  # updates since the last log record
    lexical: LexicalTable | None = None  # rank 0: stored in every checkpoint (shortlists)


def setup(recipe: Recipe, world: World) -> TrainingRun:
    """Build every part of the run from the recipe and its (checked) prepared data."""
    cfg, paths, device = recipe.train, recipe.paths, world.device
    data = PreparedData.for_recipe(recipe)
    torch.manual_seed(cfg.seed)
    tok = data.manifest.tokenizer
    model = build_model(recipe.model, tok.src_vocab_size, tok.tgt_vocab_size).to(device)
    if cfg.init_from is not None:
        init_weights(model, cfg.init_from, data, device)
    world.seed(cfg.seed)  # ranks > 0 draw their own dropout masks
    optimizer = build_optimizer(model.parameters(), cfg)
    src, tgt = shards = data.shards("train")
    sampler = BatchSampler(src.lengths, tgt.lengths, batch_tokens=cfg.batch_tokens, seed=cfg.seed)
    higher = HIGHER_IS_BETTER[cfg.early_stopping.metric]
    keeper = CheckpointKeeper(
        paths.checkpoints,
        keep=cfg.keep_checkpoints,
        higher_is_better=higher,
        keep_last=cfg.average_last or 0,
    )
    return TrainingRun(
        recipe=recipe,
        paths=paths,
        data=data,
        world=world,
        device=device,
        model=model,
        weights=StepWeights.build(model, device, cfg.precision),
        ddp=model,
        optimizer=optimizer,
        schedule=Schedule(optimizer, cfg),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16"),
        sampler=sampler,
        shards=shards,
        validator=Validator(data, recipe, device=device),
        keeper=keeper,
        log=MetricsLog(paths.logs / "metrics.jsonl"),
        amp=autocast_for(device, cfg.precision),
        tokenizers=data.tokenizer_models(),  # not re-read per save: a prepare may replace them
        lexical=data.lexical_table() if world.is_main else None,
    )


def init_weights(model: Seq2Seq, path: Path, data: PreparedData, device: torch.device) -> None:
    """`train.init_from`: the checkpoint's weights only; optimizer, schedule, data position and
    counters start fresh (a resumed run then restores its own last.pt over these)."""
    checkpoint = Checkpoint.read(path, map_location=device)
    tok = data.manifest.tokenizer
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    model.load_state_dict(
        checkpoint.weights_to_fine_tune(path, shapes, (tok.src_sha256, tok.tgt_sha256))
    )
    langs = (data.manifest.src_lang, data.manifest.tgt_lang)
    other = "" if checkpoint.langs == langs else f" (trained {'->'.join(checkpoint.langs)})"
    console.info(f"initialised from {path}{other}, step {checkpoint.step}: weights only")


def start(run: TrainingRun, *, restart: bool) -> None:
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
        resume(run)
    world.check_same(
        (run.state.step, run.sampler.state_dict()),
        f"is not where rank 0 is (step, data position); does every node see the same "
        f"{run.keeper.last}? The run directory must be on a filesystem that all nodes share",
    )
    run.weights.pull()  # a bf16 copy takes the resumed (or rank-0-equal) master weights
    run.ddp = world.wrap(run.weights.compute)
    if world.is_main:
        atomic_write_text(run.paths.recipe, run.recipe.to_yaml())
        run.log.truncate_after(run.state.step)


def save(run: TrainingRun, *, value: float | None = None, best: bool = False) -> None:
    """Write last.pt (rank 0) with every rank's random state: a collective, called by all ranks."""
    rngs = run.world.gather(rng_state())
    if run.world.is_main:
        run.keeper.save(to_checkpoint(run, rngs), step=run.state.step, value=value, best=best)


def to_checkpoint(run: TrainingRun, rngs: list[dict[str, Any]]) -> Checkpoint:
    """The self-contained checkpoint (to resume or to translate raw text); `rngs`: every rank's."""
    manifest = run.data.manifest
    return Checkpoint(
        model=run.model.state_dict(),
        recipe_yaml=run.recipe.to_yaml(),
        tokenizer=run.tokenizers,
        langs=(manifest.src_lang, manifest.tgt_lang),
        vocab_sizes=(manifest.tokenizer.src_vocab_size, manifest.tokenizer.tgt_vocab_size),
        step=run.state.step,
        lexical=run.lexical,
        training=TrainingState(
            state=replace(run.state),
            optimizer=run.optimizer.state_dict(),
            schedule=run.schedule.state_dict(),
            scaler=run.scaler.state_dict(),
            sampler=run.sampler.state_dict(),
            log_window=run.window.state_dict(),
            rng=rngs,
        ),
    )


def average_last(run: TrainingRun) -> dict[str, Any] | None:
    """`train.average_last: N` (rank 0, at the end): avg.pt = the weights averaged over the
    last N validated checkpoints, validated like them; returns its "average" log record (None
    when fewer than two are kept)."""
    n = run.recipe.train.average_last
    found = run.keeper.latest(n) if n else []
    if len(found) < 2:
        console.info(f"average_last={n}: {len(found)} validated checkpoint(s), nothing averaged")
        return None
    averaged = average_checkpoints(found, run.paths.checkpoints / "avg.pt")
    model = build_model(run.recipe.model, *averaged.vocab_sizes).to(run.device)
    model.load_state_dict(averaged.model)
    result = run.validator.run(model, run.amp)
    steps = [step for step in averaged.averaged_steps or [] if step is not None]
    console.info(
        f"avg.pt (steps {', '.join(map(str, steps))}): valid loss {result.loss:.3f}  ppl "
        f"{result.ppl:.2f}  BLEU {result.bleu:.2f}  chrF {result.chrf:.2f}"
    )
    record: dict[str, Any] = {"kind": "average", "step": run.state.step, "steps": steps}
    record.update(loss=round(result.loss, 5), ppl=round(result.ppl, 3))
    record.update(bleu=round(result.bleu, 2), chrf=round(result.chrf, 2))
    return record


def resume(run: TrainingRun) -> None:
    """Restore every part from last.pt; model and tokenizer must be the ones it was trained on."""
    path = run.keeper.last
    checkpoint = Checkpoint.read(path, map_location=run.device)
    tok = run.data.manifest.tokenizer
    training = checkpoint.check_resumable(path, run.recipe, (tok.src_sha256, tok.tgt_sha256))
    if changed := checkpoint.changed_train_settings(run.recipe, ignore=STOP_KEYS):
        console.info(
            f"[yellow]note: train settings changed since the checkpoint "
            f"({', '.join(changed)}): the continuation differs from the original run[/]"
        )
    run.model.load_state_dict(checkpoint.model)
    run.optimizer.load_state_dict(training.optimizer)
    run.schedule.load_state_dict(training.schedule)
    run.scaler.load_state_dict(training.scaler)
    run.sampler.load_state_dict(training.sampler)
    run.window.load_state_dict(training.log_window)
    run.state = training.state
    _restore_rng(run, training.rng, path)
    s = run.state
    if run.world.is_main and s.last_valid_step == s.step and s.last_valid_value is not None:
        # Killed after writing last.pt but before linking best.pt / the step file? Redo that.
        run.keeper.finish(step=s.step, value=s.last_valid_value, best=s.best_step == s.step)
    console.info(
        f"resuming from {path}: step {s.step}, epoch {run.sampler.epoch} (batch "
        f"{run.sampler.position}), best {run.recipe.train.early_stopping.metric} "
        f"{fmt_value(s.best_value)} at step {s.best_step}, {s.elapsed:.0f}s trained so far; "
        "restored model, optimizer, schedule, RNG states and data position"
    )


def _restore_rng(run: TrainingRun, rngs: list[dict[str, Any]], path: Path) -> None:
    """Each rank continues its own random stream; with another number of ranks, rank 0
    continues rank 0's and the others get new ones, reproducibly."""
    world = run.world
    if len(rngs) == world.size:
        set_rng_state(rngs[world.rank])
        return
    console.info(
        f"note: {path} was written by {len(rngs)} process(es), now {world.size}: the data "
        "stream continues exactly, the dropout masks of ranks > 0 do not"
    )
    set_rng_state(rngs[0])
    world.seed(run.recipe.train.seed, run.state.step)


def fmt_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
