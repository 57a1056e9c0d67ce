"""TensorBoard event files in `RUN_DIR/tensorboard/`: a view of `logs/metrics.jsonl`.

Every record written to the metrics log is mirrored against its update step: a train record as
the scalars `train/loss`, `train/ppl`, `train/lr`, `train/tok_per_s`; a validation record as
`valid/loss`, `valid/ppl`, `valid/bleu`, `valid/chrf` and its sample translations as a markdown
table (`valid/samples`). Events are flushed at each validation. Only rank 0 writes.

`tensorboard` is optional (the `tensorboard` extra: `pip install "nmtkit[tensorboard]"`),
imported here only when training starts, so `import nmtkit` and `nmtkit --help` never load it;
without it training says so once (`INSTALL_NOTE`, naming the extra) and carries on. A resumed
run appends to the same directory: its writer's `purge_step` hides the events a killed run
wrote after the checkpoint it resumes from, as `MetricsLog.truncate_after` drops their
records; `--restart` deletes the old event files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nmtkit.extras import note_skipped, skip_note
from nmtkit.paths import write_error

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

SCALARS = {  # record kind -> the record's keys written as `<kind>/<key>`
    "train": ("loss", "ppl", "lr", "tok_per_s"),
    "valid": ("loss", "ppl", "bleu", "chrf"),
    "average": ("loss", "ppl", "bleu", "chrf"),  # avg.pt (train.average_last), at the end
}
SAMPLES_TAG = "valid/samples"
EVENT_FILES = "events.out.tfevents.*"
TENSORBOARD_SKIPPED = ("TensorBoard event files", "tensorboard")
INSTALL_NOTE = skip_note(*TENSORBOARD_SKIPPED)


class TensorBoardLog:
    """Writes metrics-log records as TensorBoard events; with no writer (off, not installed,
    or not rank 0) every method does nothing. A context manager that closes the writer."""

    def __init__(self, writer: SummaryWriter | None = None) -> None:
        self.writer = writer

    @classmethod
    def open(cls, folder: Path, *, resume_step: int, restart: bool) -> TensorBoardLog:
        """A writer appending to `folder` from update `resume_step + 1` on (events of later
        steps in older files are hidden); without tensorboard installed, an inactive log."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            note_skipped(*TENSORBOARD_SKIPPED)
            return cls()
        try:
            if restart:
                for old in folder.glob(EVENT_FILES):
                    old.unlink()
            writer = SummaryWriter(str(folder), purge_step=resume_step + 1)
        except OSError as exc:
            raise write_error(folder, exc) from None
        return cls(writer)

    def write(self, record: dict[str, Any]) -> None:
        """One metrics-log record (`kind` train or valid, `step`, the values); a validation
        record's samples as text, then everything so far is flushed to disk."""
        if self.writer is None:
            return
        kind, step = record["kind"], record["step"]
        for key in SCALARS.get(kind, ()):
            if record.get(key) is not None:
                self.writer.add_scalar(f"{kind}/{key}", record[key], step)
        if kind == "valid":
            if record.get("samples"):
                self.writer.add_text(SAMPLES_TAG, samples_table(record["samples"]), step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def samples_table(samples: list[dict[str, str]]) -> str:
    """Sample translations as a markdown table with the columns src, ref and hyp."""
    rows = ["| src | ref | hyp |", "|---|---|---|"]
    for sample in samples:
        cells = (_cell(sample.get(key, "")) for key in ("src", "ref", "hyp"))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    """Text that stays inside one markdown table cell."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|") or " "
