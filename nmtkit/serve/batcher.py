"""Batching across requests: a queue and one supervised worker thread per model.

Requests wait in a queue. The worker takes the oldest and, for at most `max_wait_s` after it
arrived, lets more arrive; then it translates every waiting request with the same search
options (up to `max_batch_tokens` source tokens, at least one request) in one
`Translator.translate` call, and hands each request its own lines back. Search is
batch-invariant (tested), so a request's result is what it would be alone, and what
`nmtkit translate` gives offline. The search runs on the worker thread: the event loop only
waits on a future, so health checks answer during a long batch.

A failure fails only the requests it touches, and the worker goes on:
- counting a request's tokens fails: that request fails (`_count`), before any batch;
- the search or splitting its results fails: that batch's requests fail (`_translate`);
- a request whose future was cancelled (its client timed out or went away) while it waited is
  dropped before the search starts.
Requests fail with the exception itself when it is an `Exception`, else with `WorkerFailed`
naming its class, so that nothing but an `Exception` reaches the event loop. If anything
escapes the loop anyway, the thread's batch fails, `on_restart` counts it, and the loop starts
again; if the thread itself ended, `alive()` is False (`/ready` says 503) until `revive()`
(called by `/ready` and by every `submit`) has started a new one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from nmtkit.translate import DecodeOptions, Translation, Translator


class QueueFull(Exception):
    """The queue holds `max_queue` requests already (or the server is shutting down)."""


class WorkerFailed(Exception):
    """A request failed because the worker met a `BaseException` that is not an `Exception`
    (it is not re-raised on the event loop: it could end the server). `cause` names it."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass
class Job:
    lines: list[str]
    options: DecodeOptions
    tokens: int = -1  # source pieces, EOS included (counted by the worker): the batch budget
    future: Future[list[Translation]] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """The queue of one model and the worker thread that serves it."""

    def __init__(
        self,
        translator: Translator,
        *,
        max_batch_tokens: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[int, int], None] = lambda sentences, tokens: None,
        on_restart: Callable[[], None] = lambda: None,
    ) -> None:
        self.translator = translator
        self.max_batch_tokens, self.max_wait_s, self.max_queue = (
            max_batch_tokens,
            max_wait_s,
            max_queue,
        )
        self.on_batch, self.on_restart = on_batch, on_restart
        self._jobs: deque[Job] = deque()
        self._running: list[Job] = []  # the batch being translated (failed if the loop breaks)
        self._cond = threading.Condition()
        self._closing = False
        self._free_since = time.monotonic()  # when the worker last finished a search
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._supervise, name="nmtkit-batcher", daemon=True)
        thread.start()
        return thread

    def alive(self) -> bool:
        """Whether a worker thread serves the queue."""
        return self._thread.is_alive()

    def revive(self) -> bool:
        """Start a new worker if the last one ended (not when closing); True if it had to."""
        with self._cond:
            if self._closing or self._thread.is_alive():
                return False
            self._thread = self._start()
        self.on_restart()
        return True

    def depth(self) -> float:
        """Requests waiting (not the ones being translated); a callable, for a gauge."""
        return float(len(self._jobs))

    def submit(self, lines: list[str], options: DecodeOptions) -> Future[list[Translation]]:
        """Queue `lines`; the future gives one Translation per line, numbered from 1. Nothing
        is computed here: this runs on the event loop. Cancel the future to drop the request
        if it has not reached a search yet."""
        self.revive()
        job = Job(lines, options)
        with self._cond:
            if self._closing or len(self._jobs) >= self.max_queue:
                raise QueueFull
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        """Stop taking requests, finish the queued ones, and end the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:  # a worker that had died leaves its queue: fail it, do not hang
            self._fail(list(self._jobs), WorkerFailed("the server shut down"))
            self._jobs.clear()

    # ---- the worker thread ------------------------------------------------------------------

    def _supervise(self) -> None:
        """The thread: `_serve` until closed; anything escaping it fails the batch in hand,
        is counted, and the loop starts again. A `BaseException` that is not an `Exception`
        ends the thread after failing the batch (`revive` starts another)."""
        while True:
            try:
                self._serve()
                return
            except Exception as exc:
                self._fail(self._running, exc)
                self._running = []
                self.on_restart()
                time.sleep(0.01)  # a loop that fails at once must not spin
            except BaseException as exc:
                self._fail(self._running, exc)
                self._running = []
                raise

    def _serve(self) -> None:
        while (batch := self._take()) is not None:
            self._running = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if self._running:
                self._translate(self._running)
            self._running = []

    def _take(self) -> list[Job] | None:
        """The next batch: the oldest job and the waiting jobs of its kind; None when closed
        and empty. Jobs whose tokens cannot be counted fail here and are not taken."""
        with self._cond:
            while True:
                self._drop_uncountable()
                if self._jobs:
                    break
                if self._closing:
                    return None
                self._cond.wait()
            first = self._jobs[0]
            # Wait from the oldest arrival, or from the end of the last search: the clients it
            # just answered may be about to send their next requests.
            deadline = max(first.arrived, self._free_since) + self.max_wait_s
            while not self._closing and self._tokens_like(first) < self.max_batch_tokens:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                self._drop_uncountable()
            batch: list[Job] = []
            total = 0
            for job in self._jobs:
                if job.options == first.options and (
                    not batch or total + job.tokens <= self.max_batch_tokens
                ):
                    batch.append(job)
                    total += job.tokens
            for job in batch:
                self._jobs.remove(job)
            return batch

    def _drop_uncountable(self) -> None:
        """Count every waiting job's tokens; fail and drop the ones that cannot be counted
        (and the cancelled ones, which nobody waits for)."""
        for job in list(self._jobs):
            if job.future.cancelled():
                self._jobs.remove(job)
                continue
            if job.tokens >= 0:
                continue
            try:
                # One SentencePiece thread: the others belong to the search and the event loop.
                encoded = self.translator.src_tokenizer.encode(job.lines, threads=1)
                job.tokens = sum(len(ids) + 1 for ids in encoded)
            except BaseException as exc:
                self._jobs.remove(job)
                self._fail([job], exc)
                if not isinstance(exc, Exception):
                    raise  # the thread ends (`_supervise`), its request answered

    def _tokens_like(self, first: Job) -> int:
        return sum(job.tokens for job in self._jobs if job.options == first.options)

    def _translate(self, batch: list[Job]) -> None:
        """One search over every line of `batch`, each job's results renumbered from 1; an
        exception fails the batch's requests that are not answered yet."""
        lines = [line for job in batch for line in job.lines]
        try:
            results = self.translator.translate(lines, batch[0].options)
            self._free_since = time.monotonic()
            self.on_batch(len(lines), sum(job.tokens for job in batch))
            start = 0
            for job in batch:
                mine = results[start : start + len(job.lines)]
                if len(mine) != len(job.lines):
                    raise RuntimeError(f"{len(results)} results for {len(lines)} lines")
                job.future.set_result([replace(r, line=i) for i, r in enumerate(mine, start=1)])
                start += len(job.lines)
        except Exception as exc:
            self._fail(batch, exc)

    @staticmethod
    def _fail(jobs: list[Job], exc: BaseException) -> None:
        error = exc if isinstance(exc, Exception) else WorkerFailed(type(exc).__name__)
        for job in jobs:
            if job.future.done():
                continue
            if not job.future.running() and not job.future.set_running_or_notify_cancel():
                continue  # cancelled: nobody waits for it
            job.future.set_exception(error)
