"""What training shows and records: the live progress bar and `logs/metrics.jsonl`. Loss sums
stay on the device between log intervals (`LossWindow`): one host sync per `log_every` updates.
The loop mirrors each record to TensorBoard (`train.tensorboard`); `evaluate.curves` draws them.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress, SpinnerColumn, TextColumn
from torch import Tensor

from nmtkit import console
from nmtkit.paths import atomic_write_text, write_error

BAR_EVERY = 10  # updates between progress-bar refreshes (each costs a host sync)


class LossWindow:
    """Sums of smoothed loss, NLL and target tokens over the updates since the last record."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | float = 0.0
        self.nll: torch.Tensor | float = 0.0
        self.tokens = 0
        self.started = time.perf_counter()

    def add(self, loss: torch.Tensor, nll: torch.Tensor, tokens: int) -> None:
        self.loss, self.nll, self.tokens = self.loss + loss, self.nll + nll, self.tokens + tokens

    def state_dict(self) -> dict[str, Any]:
        """The partial window, so a resumed run logs exactly what an uninterrupted one would."""
        return {"loss": float(self.loss), "nll": float(self.nll), "tokens": self.tokens}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss, self.nll, self.tokens = state["loss"], state["nll"], state["tokens"]

    def record(
        self, step: int, epoch: int, lr: float, elapsed: float, nan_skipped: int
    ) -> dict[str, Any]:
        """The log record of this window (one host sync)."""
        tokens = max(self.tokens, 1)
        loss, nll = float(self.loss) / tokens, float(self.nll) / tokens
        seconds = max(time.perf_counter() - self.started, 1e-9)
        return {
            "kind": "train",
            "step": step,
            "epoch": epoch,
            "loss": round(loss, 5),
            "ppl": round(math.exp(min(nll, 50.0)), 3),
            "lr": lr,
            "tgt_tokens": self.tokens,
            "tok_per_s": round(self.tokens / seconds),
            "elapsed": round(elapsed, 1),
            "nan_skipped": nan_skipped,
        }


class MetricsLog:
    """`logs/metrics.jsonl`: one JSON record per log interval and per validation."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint that is being resumed) and
        a last line cut short by a killed process."""
        if not self.path.exists():
            return
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:  # it is about to be rewritten: a file we cannot write
            raise write_error(self.path, exc) from None
        kept = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a kill in mid-write; the resumed run writes it again
            if record["step"] <= step:
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))


class TrainProgress:
    """One compact live line: step (of max_steps), epoch, loss, ppl, target tokens/s, lr, time
    and time left. One text field rather than many columns, so it fits an 80-column terminal."""

    def __init__(
        self, max_steps: int | None, max_time: float | None, *, enabled: bool = True
    ) -> None:
        self.max_steps, self.max_time, self.enabled = max_steps, max_time, enabled
        text = TextColumn("{task.fields[text]}")
        self.progress = Progress(
            SpinnerColumn(), text, console=console.err_console, disable=not enabled
        )
        self.task = self.progress.add_task("train", total=max_steps, text="train: starting")
        self.window = LossWindow()

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def update(
        self, step: int, epoch: int, lr: float, secs: float, loss: Tensor, nll: Tensor, tokens: int
    ) -> None:
        if not self.enabled:
            return
        self.window.add(loss, nll, tokens)
        if step % BAR_EVERY and step != self.max_steps:
            return
        r = self.window.record(step, epoch, lr, secs, nan_skipped=0)
        self.window = LossWindow()
        of = f"/{self.max_steps:,}" if self.max_steps else ""
        text = (
            f"step {step:,}{of} ep {epoch} loss {r['loss']:.3f} ppl {r['ppl']:.1f} "
            f"{r['tok_per_s']:,} tok/s lr {lr:.1e} {_clock(secs)}{self._left(step, secs)}"
        )
        self.progress.update(self.task, completed=step, text=text)

    def _left(self, step: int, elapsed: float) -> str:
        guesses = []
        if self.max_time:
            guesses.append(self.max_time - elapsed)
        if self.max_steps and step:
            guesses.append(elapsed / step * (self.max_steps - step))
        return f" (~{_clock(min(guesses))} left)" if guesses else ""


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
