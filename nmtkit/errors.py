"""The exceptions that end a command cleanly: a `UserError` is something the user can fix (a bad
recipe, a missing file, a full disk); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any, TypeVar

_Handlers = TypeVar("_Handlers", bound="SignalHandlers")


class UserError(Exception):
    """Reported by the CLI as one paragraph and exit code 2, without a traceback."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception (see `Interrupts`), so that cleanup code runs as for
    Ctrl-C; the CLI exits with 128 + SIGTERM, as a killed process would."""

    exit_code = 143


class SignalHandlers:
    """Base of a context manager that handles SIGINT and SIGTERM with `_handle` while it is
    entered and restores the previous handlers after. Outside the main thread (where handlers
    cannot be installed) a no-op: the default handling stays."""

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        raise NotImplementedError

    def __enter__(self: _Handlers) -> _Handlers:
        with contextlib.suppress(ValueError):  # not the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Interrupts(SignalHandlers):
    """While installed, SIGINT raises KeyboardInterrupt and SIGTERM raises Terminated at once,
    except inside `deferred()`, where the exception waits for the end of the block, so that a
    line being written is not cut."""

    def __init__(self) -> None:
        super().__init__()
        self._deferring = False
        self._pending: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self._deferring:
            self._pending = signum
        else:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

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
