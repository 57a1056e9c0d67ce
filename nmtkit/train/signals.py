"""SIGINT/SIGTERM during training: noted between updates, so the loop can save and stop."""

from __future__ import annotations

import signal

from nmtkit.errors import SignalHandlers


class StopSignals(SignalHandlers):
    """SIGINT/SIGTERM set `received`, checked between updates, so the loop can save and stop; a
    second SIGINT aborts at once."""

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
