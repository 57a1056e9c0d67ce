"""The one place that talks to rich: progress bars, tables and error messages.

Progress and messages go to stderr so that stdout stays clean for results (tables, translations).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich import progress as rp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nmtkit.errors import UserError

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


class RateColumn(rp.ProgressColumn):
    """Items per second, with a unit ('pairs/s', 'lines/s')."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: rp.Task) -> Text:
        # The average since the start: work that arrives in bursts (a batch of translations,
        # a chunk of pairs) makes rich's windowed speed swing wildly.
        speed = task.completed / task.elapsed if task.elapsed else None
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="cyan")


def progress(unit: str = "it") -> rp.Progress:
    """A progress display for counted work; tasks with total=None show a spinner and a count."""
    return rp.Progress(
        rp.SpinnerColumn(),
        rp.TextColumn("[progress.description]{task.description}"),
        rp.BarColumn(),
        rp.MofNCompleteColumn(),
        rp.TaskProgressColumn(),
        RateColumn(unit),
        rp.TimeElapsedColumn(),
        console=err_console,
    )


_rank = 0  # of this training process under torchrun; only rank 0 reports progress


def set_rank(rank: int) -> None:
    """From now on: status lines only from rank 0; errors of other ranks name their rank."""
    global _rank
    _rank = rank


def info(message: str) -> None:
    """A status line on stderr."""
    if _rank == 0:
        err_console.print(message, soft_wrap=True)


def print_table(table: Table) -> None:
    """A result table on stdout."""
    out_console.print(table)


def make_table(title: str, columns: list[str]) -> Table:
    """A table whose first column is left-aligned and the rest right-aligned (numbers)."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    return table


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a UserError into 'error: ...' on stderr and exit code 2, without a traceback."""
    import typer

    try:
        yield
    except UserError as exc:
        message = " ".join(str(exc).split())  # one paragraph, whatever the message held
        label = f"error (rank {_rank}): " if _rank else "error: "
        err_console.print(Text(label, style="bold red") + Text(message), soft_wrap=True)
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt as exc:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(getattr(exc, "exit_code", 130))
