"""The exceptions that end a command cleanly.

A `UserError` is something the user can fix (a bad recipe, a missing file, mismatched line
counts, a full disk). The CLI turns it into a one-paragraph message and exit code 2, without a
traceback. Anything else is a bug and keeps its traceback. `Terminated` is SIGTERM delivered
as an exception where a command wants to clean up first (exit code 143).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A mistake in the user's input, reported as one paragraph and exit code 2."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception (see `terminate_as_interrupt`), so that cleanup code
    runs as for Ctrl-C; the CLI exits with 128 + SIGTERM, as a killed process would."""

    exit_code = 143


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (in the main thread; elsewhere a no-op)."""

    def handle(signum: int, frame: object) -> None:
        raise Terminated

    try:
        old = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
