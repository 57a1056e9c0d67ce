"""Run the nmtkit CLI with a signal injected into a checkpoint write (for test_interruption).

    NMTKIT_FAULT=kill:write:3:0.5 python -m tests.faults train RECIPE
        SIGKILL arrives when half of the 3rd checkpoint's bytes are on disk
    NMTKIT_FAULT=term:write:2:0.3 python -m tests.faults train RECIPE
        SIGTERM arrives when 30% of the 2nd checkpoint's bytes are on disk; the write goes on
    NMTKIT_FAULT=kill:link:1 python -m tests.faults train RECIPE
        SIGKILL arrives after a validated last.pt is complete, before best.pt / the step file
        are linked to it
    NMTKIT_FAULT=error:update:3 NMTKIT_FAULT_RANK=1 torchrun ... -m tests.faults train RECIPE
        rank 1 raises RuntimeError in its 3rd update (`kill:update:3`: it is SIGKILLed there)

The bytes already written are flushed and fsynced before the signal, so the file under its
temporary name really is part of a checkpoint when the process dies. Without NMTKIT_FAULT this
is plain `nmtkit`. Nothing here is imported by nmtkit itself: the fault lives in the test.
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import torch

from nmtkit.cli import main
from nmtkit.train import keeper, loop

SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}


def inject(spec: str) -> None:
    """Patch torch.save (`write`), keeper.link_or_copy (`link`) or the training loop's
    `_update` (`update`) to signal this process (or raise, `error`) in call number `nth`."""
    kind, where, nth, *fraction = spec.split(":")
    signum, count = SIGNALS.get(kind, signal.SIGKILL), 0

    def due() -> bool:
        nonlocal count
        count += 1
        return count == int(nth)

    real_save, real_link = torch.save, keeper.link_or_copy

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if not due():
            real_save(obj, f, *args, **kwargs)
            return
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        cut = int(len(data) * float(fraction[0]))
        f.write(data[:cut])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signum)  # SIGKILL ends here; the others set the stop flag
        f.write(data[cut:])

    def link(src: Path, dst: Path) -> None:
        if due():
            os.kill(os.getpid(), signum)
        real_link(src, dst)

    real_update = loop._update

    def update(*args: Any) -> Any:
        if due():
            if kind == "error":
                raise RuntimeError(f"injected fault in update {nth} (NMTKIT_FAULT={spec})")
            os.kill(os.getpid(), signum)
        return real_update(*args)

    if where == "update":
        loop._update = update  # type: ignore[assignment]
    elif where == "write":
        torch.save = save
    else:
        keeper.link_or_copy = link  # type: ignore[assignment]


if __name__ == "__main__":
    rank = os.environ.get("NMTKIT_FAULT_RANK") or None  # under torchrun: only in this rank
    if (spec := os.environ.get("NMTKIT_FAULT")) and rank in (None, os.environ.get("RANK")):
        inject(spec)
    main()
