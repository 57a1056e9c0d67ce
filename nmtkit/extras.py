"""The optional parts of nmtkit and the one wording of "install the extra that has it".

The core (`pip install nmtkit`) prepares, trains, translates, scores and evaluates. The extras
add `serve` (the HTTP server: fastapi, uvicorn, prometheus-client), `plot` (matplotlib: the
BLEU-by-length plots and the training curves) and `tensorboard` (event files while training);
`all` is the three. A command that needs a missing extra ends with `require_extra`'s one line
(exit 2) before doing any work; a by-product of a run (a plot, event files) is skipped with
`note_skipped`'s one line, and the run goes on.
"""

from __future__ import annotations

import importlib.util

from rich.markup import escape

from nmtkit import console
from nmtkit.errors import UserError

EXTRAS = {  # extra -> the modules it installs
    "serve": ("fastapi", "uvicorn", "prometheus_client"),
    "plot": ("matplotlib",),
    "tensorboard": ("tensorboard",),
}


class MissingExtra(UserError):
    """A command needs an optional part of nmtkit that is not installed."""


def install_command(extra: str) -> str:
    return f'pip install "nmtkit[{extra}]"'


def has_extra(extra: str) -> bool:
    """Whether every module of `extra` can be imported (found; none is imported here)."""
    return not missing_modules(extra)


def missing_modules(extra: str) -> list[str]:
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # blocked, or a broken entry in sys.modules
            found = False
        if not found:
            missing.append(module)
    return missing


def require_extra(extra: str, what: str) -> None:
    """Raise `MissingExtra` (`WHAT needs the "EXTRA" extra: pip install ...`) unless `extra`
    is installed."""
    if not has_extra(extra):
        raise MissingExtra(f'{what} needs the "{extra}" extra: {install_command(extra)}')


def skip_note(what: str, extra: str) -> str:
    """The one-line note for a by-product left out because `extra` is missing."""
    return f'{what} skipped: the "{extra}" extra is not installed ({install_command(extra)})'


def note_skipped(what: str, extra: str) -> None:
    """`skip_note` on stderr (escaped: `[plot]` is no markup)."""
    console.info(f"[yellow]{escape(skip_note(what, extra))}[/]")
