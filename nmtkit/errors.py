"""The exceptions that end a command cleanly: a `UserError` is something the user can fix (a bad
recipe, a missing file, a full disk); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class UserError(Exception):
    """Reported by the CLI as one paragraph and exit code 2, without a traceback."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception (see `Interrupts`), so that cleanup code runs as for
    Ctrl-C; the CLI exits with 128 + SIGTERM, as a killed process would."""

    exit_code = 143


class Interrupts:
    """While installed (a context manager), SIGINT raises KeyboardInterrupt and SIGTERM raises
    Terminated at once, except inside `deferred()`, where the exception waits for the end of
    the block, so that a line being written is not cut. Outside the main thread, a no-op."""

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
        with contextlib.suppress(ValueError):  # not the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            self._handle(signum, None)
