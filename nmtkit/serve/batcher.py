"""Batching across requests: a queue and one worker thread per model.

Requests wait in a queue. The worker takes the oldest and, for at most `max_wait_s` after it
arrived, lets more arrive; then it translates every waiting request with the same search
options (up to `max_batch_tokens` source tokens, at least one request) in one
`Translator.translate` call, and hands each request its own lines back. Search is
batch-invariant (tested), so a request's result is what it would be alone, and what
`nmtkit translate` gives offline. The search runs on the worker thread: the event loop only
waits on a future, so health checks answer during a long batch.
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
    ) -> None:
        self.translator = translator
        self.max_batch_tokens, self.max_wait_s, self.max_queue = (
            max_batch_tokens,
            max_wait_s,
            max_queue,
        )
        self.on_batch = on_batch
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._free_since = time.monotonic()  # when the worker last finished a search
        self._thread = threading.Thread(target=self._work, name="nmtkit-batcher", daemon=True)
        self._thread.start()

    def depth(self) -> float:
        """Requests waiting (not the ones being translated); a callable, for a gauge."""
        return float(len(self._jobs))

    def submit(self, lines: list[str], options: DecodeOptions) -> Future[list[Translation]]:
        """Queue `lines`; the future gives one Translation per line, numbered from 1. Nothing
        is computed here: this runs on the event loop."""
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

    def _take(self) -> list[Job] | None:
        """The next batch: the oldest job and the waiting jobs of its kind; None when closed
        and empty."""
        with self._cond:
            while not self._jobs:
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
            batch: list[Job] = []
            total = 0
            for job in self._jobs:
                if job.options == first.options and (
                    not batch or total + self._count(job) <= self.max_batch_tokens
                ):
                    batch.append(job)
                    total += self._count(job)
            for job in batch:
                self._jobs.remove(job)
            return batch

    def _tokens_like(self, first: Job) -> int:
        return sum(self._count(job) for job in self._jobs if job.options == first.options)

    def _count(self, job: Job) -> int:
        """The job's source pieces, counted once, on the worker thread (one SentencePiece
        thread: the others belong to the search and the event loop)."""
        if job.tokens < 0:
            encoded = self.translator.src_tokenizer.encode(job.lines, threads=1)
            job.tokens = sum(len(ids) + 1 for ids in encoded)
        return job.tokens

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if batch:
                self._translate(batch)

    def _translate(self, batch: list[Job]) -> None:
        """One search over every line of `batch`, each job's results renumbered from 1."""
        lines = [line for job in batch for line in job.lines]
        try:
            results = self.translator.translate(lines, batch[0].options)
        except BaseException as exc:  # the requests fail; the worker goes on
            for job in batch:
                job.future.set_exception(exc)
            return
        self._free_since = time.monotonic()
        self.on_batch(len(lines), sum(job.tokens for job in batch))
        start = 0
        for job in batch:
            mine = results[start : start + len(job.lines)]
            job.future.set_result([replace(r, line=i) for i, r in enumerate(mine, start=1)])
            start += len(job.lines)
