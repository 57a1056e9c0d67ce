"""The checkpoint: one typed object, and the only module that knows how it is stored.

On disk a checkpoint is one `torch.save`d dict of tensors and plain values: format_version,
kind="nmtkit-checkpoint", nmtkit_version, step, model, recipe (the resolved YAML text),
tokenizer {joint, src, tgt: SentencePiece model bytes, src_sha256, tgt_sha256}, vocab_size
{src, tgt}, langs {src, tgt} and lexical {candidates, frequent} (the int32 arrays of the
`data.lexical` table, for shortlists; checkpoints of older versions have none); resumable
checkpoints add TRAINING_STATE (`rng` is rank 0's, `rng_ranks` every rank's when there were
several), averaged ones averaged_from and averaged_steps. Adding a field is a change to this
module only.

`write` is atomic (temporary file, fsync, rename): a crash leaves the previous checkpoint or
the new one, never half of one; a failed write (disk full) leaves the previous file. `read`
loads with `weights_only=True`: a file that would run code when unpickled is refused.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from nmtkit import __version__
from nmtkit.data.lexical import LexicalTable
from nmtkit.data.tokenizer import TokenizerModels
from nmtkit.errors import UserError
from nmtkit.paths import WriteError, atomic_write
from nmtkit.recipe import Recipe, parse_recipe

FORMAT_VERSION = 1
KIND = "nmtkit-checkpoint"
CONTENTS = {"model": dict, "recipe": str, "tokenizer": dict}  # in every checkpoint, of these types
TRAINING_STATE = ("state", "optimizer", "schedule", "scaler", "sampler", "log_window", "rng")


class CheckpointError(UserError):
    """A checkpoint that cannot be read, or was not written by a compatible nmtkit."""


@dataclass
class TrainState:
    """The training loop's counters: what resuming restores besides tensors and positions."""

    step: int = 0
    elapsed: float = 0.0  # seconds of training, summed over resumes
    best_value: float | None = None
    best_step: int | None = None
    bad_validations: int = 0
    nan_skipped: int = 0
    last_valid_step: int = 0
    last_valid_value: float | None = None  # the metric at last_valid_step


@dataclass
class TrainingState:
    """Everything a resumed run needs besides the weights; each part is the `state_dict` of
    the object that owns it (optimizer, schedule, scaler, sampler, the log's loss window)."""

    state: TrainState
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    scaler: dict[str, Any]
    sampler: dict[str, Any]
    log_window: dict[str, Any]
    rng: list[dict[str, Any]]  # one random state per rank (see `rng_state`)


@dataclass
class Checkpoint:
    """A trained model with what it needs to translate (recipe, tokenizers) and, when written
    by a training run, what it needs to continue (`training`)."""

    model: dict[str, torch.Tensor]
    recipe_yaml: str  # the resolved recipe
    tokenizer: TokenizerModels
    langs: tuple[str, str]  # (source, target) language codes
    vocab_sizes: tuple[int, int]  # (source, target)
    step: int | None = None
    training: TrainingState | None = None
    averaged_from: list[str] | None = None
    averaged_steps: list[int | None] | None = None
    lexical: LexicalTable | None = None  # learned from the training data (`--shortlist`)

    def recipe(self, origin: str | Path = "the checkpoint") -> Recipe:
        """The recipe it was trained with; errors name `origin` (e.g. the checkpoint's path)."""
        return parse_recipe(self.recipe_yaml, f"the recipe stored in {origin}")

    def write(self, path: Path) -> None:
        """Write to `path` atomically; a failed write (disk full, ...) is a CheckpointError."""
        path = Path(path)
        payload = self._payload()
        try:
            atomic_write(path, lambda f: torch.save(payload, f))
        except WriteError as exc:
            raise CheckpointError(
                f"{exc}. Free some space (or fix the folder) and run the same command again: "
                "training continues from the last checkpoint that was written"
            ) from None
        with contextlib.suppress(OSError):  # make the rename durable (POSIX), where possible
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "nmtkit_version": __version__,
            "step": self.step,
            "model": self.model,
            "recipe": self.recipe_yaml,
            "tokenizer": asdict(self.tokenizer),
            "vocab_size": dict(zip(("src", "tgt"), self.vocab_sizes, strict=True)),
            "langs": dict(zip(("src", "tgt"), self.langs, strict=True)),
        }
        if self.lexical is not None:
            payload["lexical"] = {
                "candidates": torch.from_numpy(self.lexical.candidates.astype(np.int32)),
                "frequent": torch.from_numpy(self.lexical.frequent.astype(np.int32)),
            }
        if (t := self.training) is not None:  # one stored key per field (TRAINING_STATE)
            payload.update(vars(t), state=asdict(t.state), rng=t.rng[0])
            if len(t.rng) > 1:
                payload["rng_ranks"] = t.rng
        if self.averaged_from is not None:
            payload.update(averaged_from=self.averaged_from, averaged_steps=self.averaged_steps)
        return payload

    @classmethod
    def read(cls, path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
        """Read a checkpoint safely; every way it can be wrong is a CheckpointError."""
        path = Path(path)
        payload = _load_payload(path, map_location)
        try:
            return cls._from_payload(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path} is damaged: its contents do not fit together "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
            ) from None

    @classmethod
    def _from_payload(cls, p: dict[str, Any]) -> Checkpoint:
        vocab, langs = p.get("vocab_size") or {}, p.get("langs") or {}
        training = None
        if all(key in p for key in TRAINING_STATE):
            parts = {key: p[key] for key in TRAINING_STATE}
            parts.update(state=TrainState(**p["state"]), rng=p.get("rng_ranks", [p["rng"]]))
            training = TrainingState(**parts)
        lexical = None
        if (table := p.get("lexical")) is not None:
            # .cpu(): a checkpoint read with map_location=cuda (resuming on a GPU)
            candidates, frequent = (table[key].cpu().numpy() for key in ("candidates", "frequent"))
            lexical = LexicalTable(candidates, frequent)
        return cls(
            model=p["model"],
            recipe_yaml=p["recipe"],
            tokenizer=TokenizerModels(**p["tokenizer"]),
            langs=(langs.get("src", ""), langs.get("tgt", "")),
            vocab_sizes=(int(vocab.get("src", 0)), int(vocab.get("tgt", 0))),
            step=p.get("step"),
            training=training,
            averaged_from=p.get("averaged_from"),
            averaged_steps=p.get("averaged_steps"),
            lexical=lexical,
        )

    def check_resumable(self, path: Path, recipe: Recipe, hashes: tuple[str, str]) -> TrainingState:
        """The training state to continue `recipe`'s run on data with these tokenizers; a
        UserError naming `path` if this checkpoint cannot continue it."""
        if self.training is None:
            raise UserError(
                f"{path} cannot be resumed: it holds no training state "
                f"({', '.join(TRAINING_STATE)}); an averaged checkpoint is for translating only. "
                "Use --restart to start over"
            )
        if self.recipe(path).model != recipe.model:
            raise UserError(
                f"{path} was trained with another model section than the recipe's; use "
                "--restart to start over, or another run_dir"
            )
        if self.tokenizer.hashes != hashes:
            raise UserError(
                f"{path} was trained with another tokenizer than the prepared data in "
                f"{recipe.paths.data}; use --restart to train on the new data"
            )
        return self.training

    def weights_to_fine_tune(
        self, path: Path, shapes: dict[str, tuple[int, ...]], hashes: tuple[str, str]
    ) -> dict[str, torch.Tensor]:
        """The weights for a model with these parameter `shapes` trained on data with these
        tokenizers (`train.init_from`); a UserError naming `path` if they do not fit."""
        if self.tokenizer.hashes != hashes:
            raise UserError(
                f"train.init_from: {path} was trained with other tokenizers than those of the "
                "prepared data; run `nmtkit prepare` with train.init_from set (it encodes the "
                "corpus with the checkpoint's tokenizers), or use --force if it was prepared before"
            )
        mine = {key: tuple(value.shape) for key, value in self.model.items()}
        if mine != shapes:
            differ = sorted(set(mine.items()) ^ set(shapes.items()))[:3]
            raise UserError(
                f"train.init_from: {path} holds a model of another shape than the recipe's "
                f"model section (parameters differ, e.g. {', '.join(f'{k} {s}' for k, s in differ)}"
                "); fine-tuning keeps the architecture: take cell, sizes, layers, attention, "
                "input_feeding, init and embedding sharing from its recipe"
            )
        return self.model

    def changed_train_settings(self, recipe: Recipe, ignore: tuple[str, ...]) -> list[str]:
        """The `train:` keys (other than `ignore`) whose values differ from the checkpoint's."""
        now, before = recipe.train.model_dump(), self.recipe().train.model_dump()
        return [key for key in now if key not in ignore and now[key] != before[key]]


def _load_payload(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The checkpoint's dict, checked for kind, format version and the parts every checkpoint
    has; every way it can be wrong is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # "Unsupported global" / "unsupported GLOBAL posix.system ... blocked": a callable or a
        # class, and calling it could do anything.
        if "global" in str(exc).lower():
            raise CheckpointError(
                f"{path} was refused: it holds objects other than tensors and plain values, and "
                "loading it could run code; nmtkit only opens plain checkpoints (weights_only)"
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch file)") from None
    except Exception as exc:  # torch raises many kinds (RuntimeError, KeyError, ...) for junk
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a checkpoint: "
            f"{(str(exc).splitlines() or [type(exc).__name__])[0][:120]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise CheckpointError(f"{path} is a PyTorch file but not an nmtkit checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path} is damaged: it has no checkpoint format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this nmtkit reads "
            f"({FORMAT_VERSION}); upgrade nmtkit"
        )
    wrong = [key for key, kind in CONTENTS.items() if not isinstance(payload.get(key), kind)]
    if wrong:
        raise CheckpointError(
            f"{path} is damaged: {', '.join(wrong)} missing or of the wrong type "
            f"(expected {', '.join(CONTENTS[k].__name__ for k in wrong)})"
        )
    return payload


def rng_state() -> dict[str, Any]:
    """Every random state training draws from (Python, NumPy's global, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def average_checkpoints(paths: list[Path], output: Path) -> Checkpoint:
    """Average the weights of checkpoints of one model (same parameter names and shapes, same
    tokenizers), e.g. the last few of a run. The result has the recipe, tokenizers and integer
    buffers of the first: enough to translate, not to resume training."""
    if len(paths) < 2:
        raise UserError("averaging needs at least two checkpoints")
    first_path, *rest = (Path(p) for p in paths)
    first = Checkpoint.read(first_path)
    total = {k: v.double() if v.is_floating_point() else v for k, v in first.model.items()}
    steps = [first.step]
    for path in rest:
        other = Checkpoint.read(path)
        _check_same_model(first_path, first, path, other)
        for key, value in other.model.items():
            if value.is_floating_point():
                total[key] += value.double()
        steps.append(other.step)
    model = {
        k: (v / len(paths)).to(first.model[k].dtype) if v.is_floating_point() else v
        for k, v in total.items()
    }
    names = [str(p) for p in paths]
    averaged = replace(first, model=model, training=None, averaged_from=names, averaged_steps=steps)
    averaged.write(output)
    return averaged


def _check_same_model(a_path: Path, a: Checkpoint, b_path: Path, b: Checkpoint) -> None:
    shapes_a, shapes_b = ({k: tuple(v.shape) for k, v in c.model.items()} for c in (a, b))
    if shapes_a != shapes_b:
        differ = sorted(set(shapes_a.items()) ^ set(shapes_b.items()))[:3]
        raise UserError(
            f"{a_path} and {b_path} are different models and cannot be averaged "
            f"(parameters differ, e.g. {', '.join(f'{k} {s}' for k, s in differ)})"
        )
    if a.tokenizer.hashes != b.tokenizer.hashes:
        raise UserError(f"{a_path} and {b_path} use different tokenizers and cannot be averaged")
