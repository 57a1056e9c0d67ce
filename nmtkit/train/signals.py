"""SIGINT/SIGTERM during training: noted between updates, so the loop can save and stop."""

from __future__ import annotations

import contextlib
import signal
from typing import Any


class StopSignals:
    """SIGINT/SIGTERM set `received`, checked between updates, so the loop can save and stop; a
    second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> StopSignals:
        with contextlib.suppress(ValueError):  # not the main thread: keep default handling
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
