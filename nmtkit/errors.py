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
from typing import Any


class UserError(Exception):
    """A mistake in the user's input, reported as one paragraph and exit code 2."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception (see `Interrupts`), so that cleanup code runs as for
    Ctrl-C; the CLI exits with 128 + SIGTERM, as a killed process would."""

    exit_code = 143


class Interrupts:
    """While installed (a context manager), SIGINT raises KeyboardInterrupt and SIGTERM raises
    Terminated at once, except inside `deferred()`, where the exception waits for the end of
    the block: a line being written is finished before the interruption takes effect (a
    signal raised inside a file write could otherwise cut it). Outside the main thread,
    installing does nothing."""

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}
        self._deferring = False
        self._pending: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self._deferring:
            self._pending = signum
        else:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            self._handle(signum, None)
