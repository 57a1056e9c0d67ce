"""Real `nmtkit serve` processes for the tests that need one (a socket, signals, a browser):
`tests.serve.slow_server` (nmtkit with every search slowed by `delay` seconds) on a free port of
127.0.0.1, its output in a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(NamedTuple):
    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[bytes]


@contextmanager
def serving(run_dir: Path, log: Path, *options: str, delay: float = 0.0) -> Iterator[Served]:
    """`nmtkit serve -m RUN_DIR OPTIONS` until the block ends (then SIGTERM, and SIGKILL if it
    has not exited 15 s later); yields once `/ready` answers 200 (fails after 60 s, or if the
    process exits, with its log)."""
    port = free_port()
    cmd = [sys.executable, "-m", "tests.serve.slow_server", "serve", "-m", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NMTKIT_TEST_DELAY": str(delay)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), "--device", "cpu", *options],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server was not ready within 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield Served(base, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
