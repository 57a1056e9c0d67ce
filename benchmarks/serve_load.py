"""`nmtkit serve` under load: one-sentence requests from concurrent clients, with and without
batching across requests, against offline translation of the same sentences; then a soak in
which one request in ten is malformed.

    python benchmarks/serve_load.py runs/demo --clients 1 8 64 --requests 400

1. Offline baseline: the run's test split (source side) through the Python API in this
   process (`Translator.load(RUN).translate`, the recipe's decode settings with beam 5,
   device cpu), timing the translation alone (model loading and a 64-line warm-up excluded).
   Its best texts are the expected answers below.
2. Server, batching on: `python -m nmtkit serve -m RUN --port FREE --device cpu` (the server's
   defaults: 6,000-token batches, 5 ms wait) as a child process on 127.0.0.1, ready when
   `/ready` answers 200. For each number of clients C (asyncio, one `httpx.AsyncClient` with C
   connections, each client sending its next request as soon as the previous one is answered),
   max(--requests, 16 C) requests of ONE test sentence each, beam 5, the sentences taken in
   order and cycled. Reported: sentences/s (requests / wall time of the level), latency
   percentiles per request (send to parsed answer), the mean sentences per batched search
   (`nmtkit_batch_sentences` of `/metrics`, before and after the level), and the CPU seconds
   of the server's event-loop thread, of its other threads (the batch worker and torch's
   OpenMP threads) and of this client process, which show which side is the bottleneck.
3. The same server with `--max-batch-tokens 1` (every request searched alone).
4. Check, a soak (`--check-requests`, default 10,000): that many requests from the most
   clients (64) to the batching server, the test sentences cycled, of which one in ten
   (request k where k mod 10 = 9) is malformed instead, the kinds taken in turn: invalid
   JSON, a lone surrogate (raw JSON bytes `\\ud800`), a field of the wrong type, an unknown
   key, more lines than --max-lines, a line over --max-chars, a body over --max-body-bytes,
   lines x beam x nbest over --max-work, an unknown model, no lines (the limits: the server's
   defaults, or `--server-option=--max-work=N` and the like). Each good request must be
   answered exactly once, with 200, one result for its sentence, and the best text equal to
   the offline one (else it is counted lost or changed); each malformed one with its 4xx
   (`BAD_KINDS`) and a JSON body with a string "error"; no worker may have restarted
   (`nmtkit_worker_restarts_total` at the end). Reported: requests, good, malformed, those
   answered 4xx JSON, the statuses by kind, lost, changed, worker restarts, requests/s and
   the good requests' latency. Every level of 2 and 3 is checked the same way (good requests
   only), and the server's own request counter must equal the requests sent.

Every server is stopped with SIGTERM and must exit 0 (killed after a bounded wait). Results go
to the `serve` section of the Markdown file and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import (  # noqa: E402
    cpu_description,
    shown_command,
    shown_path,
    update_json,
    write_section,
)

SECTION = "serve"

BEAM = 5
READY_TIMEOUT_S = 180.0  # start-up and model loading
STOP_TIMEOUT_S = 30.0  # SIGTERM to exit, before a kill
REQUEST_TIMEOUT_S = 120.0  # one request, client side (the server answers 504 after its --timeout)
# A client's idle connection is dropped after this, before the server's --keep-alive (5 s)
# closes it: else a request sent as the server closes it is lost (httpx's default is 5 s too).
KEEPALIVE_S = 2.0
MIN_PER_CLIENT = 16  # requests per client at least, so that ramp-up and drain stay small
WARMUP_REQUESTS = 32
CHUNK_SECONDS = 10.0  # offline time per chunk size (the whole split, or fewer sentences)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(threads: int | None) -> dict[str, str]:
    pythonpath = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


@dataclass
class ServerRun:
    """One server process: how it was started and how it ended."""

    args: list[str]
    pid: int = 0
    ready_s: float = 0.0  # start to /ready 200
    exit_status: int | None = None
    stop_s: float = 0.0  # SIGTERM to exit
    killed: bool = False
    stderr_tail: str = ""


def serve_args(run: Path, port: int, options: list[str]) -> list[str]:
    return ["-m", "nmtkit", "serve", "-m", str(run), "--port", str(port), *options]


@contextlib.contextmanager
def serving(
    run: Path,
    options: list[str],
    *,
    threads: int | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
) -> Iterator[tuple[str, subprocess.Popen, ServerRun]]:
    """`python -m nmtkit serve -m RUN --port FREE OPTIONS` until /ready, then (base URL, the
    process, its record); always stopped with SIGTERM, killed if it has not exited within
    STOP_TIMEOUT_S."""
    port = free_port()
    record = ServerRun(args=serve_args(run, port, options))
    with tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, *record.args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=child_env(threads),
            cwd=REPO,
        )
        record.pid = proc.pid
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_ready(base, proc, started, ready_timeout)
            except RuntimeError as exc:
                stderr.seek(0)
                tail = stderr.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"{exc}; its stderr ends:\n{tail}") from None
            record.ready_s = time.monotonic() - started
            yield base, proc, record
        finally:
            record.exit_status, record.stop_s, record.killed = stop(proc)
            stderr.seek(0)
            record.stderr_tail = stderr.read().decode("utf-8", "replace")[-2000:]


def wait_ready(base: str, proc: subprocess.Popen, started: float, timeout: float) -> None:
    """Poll /ready until 200; an error if the server exits or `timeout` s pass from `started`."""
    deadline = started + timeout
    with httpx.Client(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode} at start")
            try:
                if client.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout:g} s")


def stop(proc: subprocess.Popen) -> tuple[int | None, float, bool]:
    """SIGTERM, then a kill after STOP_TIMEOUT_S: (exit status, seconds to exit, killed)."""
    started = time.monotonic()
    if proc.poll() is not None:
        return proc.returncode, 0.0, False
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=STOP_TIMEOUT_S)
        return status, time.monotonic() - started, False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        return proc.returncode, time.monotonic() - started, True


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process's main thread (uvicorn's event loop) and of
    all its other live threads (the batch worker, torch's OpenMP threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the thread ended
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if task.name == str(pid):
            main += seconds
        else:
            other += seconds
    return main, other


def scrape(base: str) -> dict[str, float]:
    """The server's Prometheus samples, name{labels} -> value."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


# ------------------------------------------------------------------------------ the load


@dataclass
class Answer:
    index: int  # the request's number within its level
    status: int  # HTTP status; 0: no response (a transport error)
    seconds: float
    text: str | None = None  # the best hypothesis
    error: str = ""
    kind: str = ""  # a malformed request's kind ("": a good one)
    json_error: bool = False  # a malformed one: its body is JSON with a str "error"


# ----------------------------------------------------------------------- malformed requests


@dataclass(frozen=True)
class Limits:
    """The server's request limits (`nmtkit serve` defaults, or --server-option)."""

    max_lines: int
    max_chars: int
    max_body_bytes: int
    max_work: int

    @classmethod
    def of(cls, options: list[str]) -> Limits:
        """The defaults of `ServeSettings`, changed by `--max-lines N` or `--max-lines=N` (and
        the other three) among the server's options."""
        from nmtkit.serve.schemas import ServeSettings

        defaults = ServeSettings()
        names = ("max_lines", "max_chars", "max_body_bytes", "max_work")
        found = {name: getattr(defaults, name) for name in names}
        for i, option in enumerate(options):
            name, eq, value = option.partition("=")
            field_name = name.removeprefix("--").replace("-", "_")
            if name.startswith("--") and field_name in found:
                if not eq:
                    value = options[i + 1] if i + 1 < len(options) else ""
                found[field_name] = int(value)
        return cls(**found)


BAD_EVERY = 10  # in the check (soak): requests k with k % 10 == 9 are malformed
# Each malformed kind and the status the server must answer it with.
BAD_KINDS: dict[str, int] = {
    "invalid JSON": 422,
    "lone surrogate": 422,
    "wrong field type": 422,
    "unknown key": 422,
    "too many lines": 413,
    "line too long": 413,
    "body too large": 413,
    "over --max-work": 413,
    "unknown model": 404,
    "no lines": 422,
}


def bad_kind(k: int, bad_every: int) -> str:
    """The kind of request k when one in `bad_every` is malformed ("": a good one), the kinds
    taken in turn."""
    if not bad_every or k % bad_every != bad_every - 1:
        return ""
    return list(BAD_KINDS)[(k // bad_every) % len(BAD_KINDS)]


def over_work(bounds: Limits) -> tuple[int, int, int] | None:
    """(lines, beam, nbest) within the other limits whose product exceeds --max-work."""
    for nbest in range(64, 0, -1):
        lines = bounds.max_work // (64 * nbest) + 1
        if lines <= bounds.max_lines:
            return lines, 64, nbest
    return None


def malformed(kind: str, sentence: str, bounds: Limits) -> bytes:
    """The body of a malformed request of `kind` (sent as application/json)."""
    good: dict[str, Any] = {"text": [sentence], "beam": BEAM}
    if kind == "invalid JSON":
        return json.dumps(good).encode()[:-3]  # cut short
    if kind == "lone surrogate":
        return b'{"text": ["' + sentence.encode() + b' \\ud800"]}'  # JSON allows it, UTF-8 not
    if kind == "wrong field type":
        return json.dumps({**good, "beam": "five"}).encode()
    if kind == "unknown key":
        return json.dumps({**good, "beem": BEAM}).encode()
    if kind == "too many lines":
        return json.dumps({"text": [sentence] * (bounds.max_lines + 1), "beam": 1}).encode()
    if kind == "line too long":
        return json.dumps({"text": ["x" * (bounds.max_chars + 1)], "beam": 1}).encode()
    if kind == "body too large":
        return b'{"text": ["' + b"y" * bounds.max_body_bytes + b'"]}'
    if kind == "over --max-work":
        lines, beam, nbest = over_work(bounds) or (bounds.max_lines, 64, 64)
        return json.dumps({"text": [sentence] * lines, "beam": beam, "nbest": nbest}).encode()
    if kind == "unknown model":
        return json.dumps({**good, "model": "no-such-model"}).encode()
    if kind == "no lines":
        return json.dumps({"text": []}).encode()
    raise ValueError(kind)


@dataclass
class Level:
    """One load level: a server, a number of clients, its figures and checks."""

    server: str  # "batched" or "unbatched"
    clients: int
    requests: int  # to send
    sent: int = 0
    seconds: float = 0.0  # first request sent to the last answer
    ok: int = 0  # 200 with one result for the right source
    errors: int = 0  # anything else (status, transport error, malformed body)
    mismatches: int = 0  # a 200 whose best text differs from the offline one
    not_once: int = 0  # requests answered zero or several times
    server_counted: int = 0  # translate requests the server counted during the level
    batches: int = 0
    batch_sentences: float = 0.0  # mean sentences per batched search
    batch_tokens: float = 0.0  # mean source tokens per batched search
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    loop_cpu_s: float = 0.0  # server's event-loop thread
    worker_cpu_s: float = 0.0  # server's other threads
    client_cpu_s: float = 0.0  # this process
    load_start: float = 0.0
    load_end: float = 0.0
    # the soak (the check): one request in BAD_EVERY malformed
    good: int = 0  # good requests sent
    bad: int = 0  # malformed requests sent
    bad_4xx_json: int = 0  # malformed ones answered once, 4xx, JSON with "error"
    bad_statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> status -> n
    lost: int = 0  # good requests not answered exactly once with a 200
    changed: int = 0  # good requests answered 200 with another text than offline
    worker_restarts: dict[str, float] = field(default_factory=dict)  # model -> count at the end
    bad_notes: dict[str, str] = field(default_factory=dict)  # kind -> its first wrong answer
    problems: list[str] = field(default_factory=list)

    @property
    def sent_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        row = {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}
        row["sent_per_s"] = round(self.sent_per_s, 1)
        row["requests_per_s"] = round(self.requests_per_s, 1)
        return row


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100)
    return ordered[int(rank) - 1]


async def fire(
    base: str,
    sentences: list[str],
    clients: int,
    requests: int,
    time_limit: float,
    bad_every: int = 0,
    bounds: Limits | None = None,
) -> tuple[list[Answer], int, float]:
    """`clients` closed-loop clients send requests 0..requests-1 (request k: sentence k mod
    len), one sentence and beam 5 each, until all are sent or `time_limit` seconds have passed:
    (answers, requests sent, wall seconds). With `bad_every`, request k is malformed instead
    where `bad_kind(k, bad_every)` names a kind (then `bounds` are the server's limits)."""
    numbers = itertools.count()
    answers: list[Answer] = []
    sent = 0
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=KEEPALIVE_S
    )
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, pool=REQUEST_TIMEOUT_S)
    started = time.perf_counter()
    stop_at = time.monotonic() + time_limit

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < stop_at and (k := next(numbers)) < requests:
            sent += 1
            sentence = sentences[k % len(sentences)]
            if kind := bad_kind(k, bad_every):
                assert bounds is not None
                answers.append(await send_bad(client, k, kind, sentence, bounds))
                continue
            begun = time.perf_counter()
            try:
                response = await client.post(
                    "/v1/translate", json={"text": [sentence], "beam": BEAM}
                )
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                answers.append(Answer(k, 0, time.perf_counter() - begun, error=repr(exc)[:200]))
                continue
            seconds = time.perf_counter() - begun
            answers.append(answer_of(k, sentence, response.status_code, body, seconds))

    # trust_env=False: no proxy or .netrc look-ups per request (less client CPU on the 2 cores)
    client = httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout, trust_env=False)
    async with client:
        loops = [client_loop(client) for _ in range(clients)]
        # each loop stops sending at stop_at; the last answers may take REQUEST_TIMEOUT_S
        await asyncio.wait_for(asyncio.gather(*loops), time_limit + REQUEST_TIMEOUT_S + 10)
    return answers, sent, time.perf_counter() - started


async def send_bad(
    client: httpx.AsyncClient, k: int, kind: str, sentence: str, bounds: Limits
) -> Answer:
    """Request k, malformed of `kind`: its status and whether the body is a JSON error."""
    content = malformed(kind, sentence, bounds)
    begun = time.perf_counter()
    try:
        response = await client.post(
            "/v1/translate", content=content, headers={"content-type": "application/json"}
        )
        raw = response.content
    except httpx.HTTPError as exc:
        return Answer(k, 0, time.perf_counter() - begun, error=repr(exc)[:200], kind=kind)
    seconds = time.perf_counter() - begun
    try:
        body = json.loads(raw)
        json_error = isinstance(body, dict) and isinstance(body.get("error"), str)
    except ValueError:
        json_error = False
    error = raw[:200].decode("utf-8", "replace")
    return Answer(k, response.status_code, seconds, error=error, kind=kind, json_error=json_error)


def answer_of(k: int, sentence: str, status: int, body: Any, seconds: float) -> Answer:
    if status != 200:
        return Answer(k, status, seconds, error=str(body)[:200])
    try:
        (result,) = body["results"]
        if result["source"] != sentence or result["line"] != 1:
            raise ValueError(f"the result of another line: {str(result)[:120]}")
        return Answer(k, status, seconds, text=result["nbest"][0]["text"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return Answer(k, -status, seconds, error=f"malformed answer: {exc!r}"[:200])


def run_level(
    base: str,
    pid: int,
    server: str,
    clients: int,
    requests: int,
    sentences: list[str],
    expected: list[str],
    time_limit: float,
    bad_every: int = 0,
    bounds: Limits | None = None,
) -> Level:
    """One level against a running server, with its checks (see `check`); with `bad_every`,
    a soak (see `fire`)."""
    level = Level(server, clients, requests, load_start=os.getloadavg()[0])
    before, cpu_before, client_before = scrape(base), thread_cpu(pid), time.process_time()
    answers, level.sent, level.seconds = asyncio.run(
        fire(base, sentences, clients, requests, time_limit, bad_every, bounds)
    )
    cpu_after, client_after, after = thread_cpu(pid), time.process_time(), scrape(base)
    level.load_end = os.getloadavg()[0]
    level.loop_cpu_s = cpu_after[0] - cpu_before[0]
    level.worker_cpu_s = cpu_after[1] - cpu_before[1]
    level.client_cpu_s = client_after - client_before

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    level.batches = round(delta("nmtkit_batch_sentences_count"))
    if level.batches:
        level.batch_sentences = delta("nmtkit_batch_sentences_sum") / level.batches
        level.batch_tokens = delta("nmtkit_batch_tokens_sum") / level.batches
    level.server_counted = round(
        sum(delta(name) for name in after if name.startswith("nmtkit_requests_total{"))
    )
    if bad_every:
        prefix = "nmtkit_worker_restarts_total{"
        level.worker_restarts = {
            name[len(prefix) :].rstrip("}"): value
            for name, value in after.items()
            if name.startswith(prefix)
        }
    check(level, answers, sentences, expected)
    latencies = [1000 * a.seconds for a in answers if a.status == 200]
    level.p50_ms, level.p95_ms, level.p99_ms = (percentile(latencies, q) for q in (50, 95, 99))
    level.max_ms = max(latencies, default=float("nan"))
    return level


def check(level: Level, answers: list[Answer], sentences: list[str], expected: list[str]) -> None:
    """Every request sent answered exactly once; a good one with 200 and the offline
    translation, a malformed one with its 4xx and a JSON error; the server counted as many
    requests as were sent, and (in a soak) restarted no worker. Problems are kept (the first
    few)."""
    times = Counter(a.index for a in answers)
    level.not_once = sum(times[k] != 1 for k in range(level.sent)) + sum(
        k >= level.sent for k in times
    )
    bad_indices = {a.index for a in answers if a.kind}
    level.bad = len(bad_indices)
    level.good = level.sent - level.bad
    level.lost = sum(times[k] != 1 for k in range(level.sent) if k not in bad_indices)
    for answer in answers:
        if answer.kind:
            by_status = level.bad_statuses.setdefault(answer.kind, {})
            by_status[str(answer.status)] = by_status.get(str(answer.status), 0) + 1
            wanted = BAD_KINDS[answer.kind]
            if answer.json_error and 400 <= answer.status < 500:
                level.bad_4xx_json += 1
                if answer.status == wanted:
                    continue
            note = (
                f"request {answer.index} ({answer.kind}): status {answer.status}, "
                f"expected {wanted} with a JSON error: {answer.error}"
            )
            level.bad_notes.setdefault(answer.kind, note)
        elif answer.status != 200:
            level.lost += 1
            level.errors += 1
            note = f"request {answer.index}: status {answer.status} {answer.error}"
        elif answer.text != expected[answer.index % len(expected)]:
            level.changed += 1
            level.mismatches += 1
            note = (
                f"request {answer.index}: {answer.text!r} != offline "
                f"{expected[answer.index % len(expected)]!r}"
            )
        else:
            level.ok += 1
            continue
        if len(level.problems) < 5:
            level.problems.append(note)
    if level.bad_4xx_json != level.bad:
        level.problems.append(
            f"{level.bad - level.bad_4xx_json} of {level.bad} malformed requests not answered "
            "4xx with a JSON error"
        )
    if any(level.worker_restarts.values()):
        level.problems.append(f"worker restarts: {level.worker_restarts}")
    if level.sent < level.requests:
        level.problems.append(f"time limit: {level.sent} of {level.requests} requests sent")
    if level.not_once:
        level.problems.append(f"{level.not_once} requests not answered exactly once")
    if level.server_counted != level.sent:
        level.problems.append(
            f"the server counted {level.server_counted} requests, sent {level.sent}"
        )


def warm_up(base: str, sentences: list[str]) -> None:
    """A few requests first (allocator, threads, connections), not measured."""
    asyncio.run(fire(base, sentences[::-1], 8, WARMUP_REQUESTS, 60.0))


# ------------------------------------------------------------------------------ offline


@dataclass
class Offline:
    """The offline baseline: every sentence in one call, and the same search on chunks of
    consecutive sentences (what a server can batch when that many one-sentence requests wait)."""

    sentences: int
    seconds: float
    texts: list[str]  # the best text of each sentence: the expected answers
    chunks: list[dict[str, float]] = field(default_factory=list)  # size, sentences, sent_per_s

    @property
    def sent_per_s(self) -> float:
        return self.sentences / self.seconds


def offline(
    run: Path, sentences: list[str], threads: int | None, chunk_sizes: list[int]
) -> Offline:
    """`Translator.translate` in this process (the recipe's decode settings, beam 5, cpu):
    all `sentences` in one call, then in consecutive chunks of each size (at most
    CHUNK_SECONDS of them), timing the translation alone."""
    import torch

    from nmtkit.translate import Translator

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        translator = Translator.load(run, device="cpu")
        options = translator.defaults.replace(beam_size=BEAM)
        translator.translate(sentences[:64], options)  # warm-up
        started = time.perf_counter()
        results = translator.translate(sentences, options)
        seconds = time.perf_counter() - started
        result = Offline(len(sentences), seconds, [r.texts[0] for r in results])
        for size in chunk_sizes:
            done, started = 0, time.perf_counter()
            while done < len(sentences) and time.perf_counter() - started < CHUNK_SECONDS:
                done += len(translator.translate(sentences[done : done + size], options))
            seconds = time.perf_counter() - started
            result.chunks.append({"size": size, "sentences": done, "sent_per_s": done / seconds})
    finally:
        torch.set_num_threads(before)  # as it was (a caller's process, e.g. a test)
    return result


# ------------------------------------------------------------------------------ report


def checks(
    levels: list[Level], base: Offline, checked: Level | None, servers: dict[str, ServerRun]
) -> list[dict]:
    """What the figures above say in a line each: the ratios that show what batching buys,
    and the correctness checks (`ok` is set on those only)."""
    by = {(lv.server, lv.clients): lv for lv in levels}
    most = max(lv.clients for lv in levels)
    rows: list[dict] = []
    batched, unbatched = by.get(("batched", most)), by.get(("unbatched", most))
    chunked = {chunk["size"]: chunk["sent_per_s"] for chunk in base.chunks}
    if batched and unbatched and unbatched.sent_per_s:
        ratio = batched.sent_per_s / unbatched.sent_per_s
        ceiling = ""
        if 1 in chunked and most in chunked:
            ceiling = (
                f"; offline, chunks of {most} / chunks of 1: {chunked[most] / chunked[1]:.2f}x"
            )
        rows.append(
            {
                "what": f"{most} clients: batched / unbatched sentences/s",
                "value": f"{ratio:.2f}x{ceiling}",
            }
        )
    if batched:
        ratio = batched.sent_per_s / base.sent_per_s
        ceiling = ""
        if most in chunked:
            ceiling = (
                f"; offline, chunks of {most} / one call: {chunked[most] / base.sent_per_s:.0%}"
            )
        rows.append(
            {
                "what": f"{most} clients: batched / offline (one call) sentences/s",
                "value": f"{ratio:.0%}{ceiling}",
            }
        )
    if ("batched", 8) in by:
        rows.append(
            {
                "what": "8 clients: batched p99 latency",
                "value": f"{by['batched', 8].p99_ms:,.0f} ms",
            }
        )
    for level in [*levels, *([checked] if checked else [])]:
        clean = level.ok == level.requests - level.bad and not level.problems
        if level is checked:
            rows.append(
                {
                    "what": f"soak, {level.clients} clients: {level.requests:,} requests, one "
                    f"in {BAD_EVERY} malformed; every good one answered once, 200, equal to "
                    "offline, every malformed one a 4xx JSON error, no worker restart",
                    "value": f"{level.good:,} good: {level.ok:,} ok, {level.lost} lost, "
                    f"{level.changed} changed; {level.bad:,} malformed: "
                    f"{level.bad_4xx_json:,} 4xx JSON; {level.not_once} not once; worker "
                    f"restarts {sum(level.worker_restarts.values()):g}",
                    "ok": clean,
                }
            )
        elif not clean:
            rows.append(
                {
                    "what": f"{level.server}, {level.clients} clients: all {level.requests:,} "
                    "requests answered once, 200, equal to offline",
                    "value": f"{level.ok:,} ok, {level.errors} errors, "
                    f"{level.mismatches} mismatches, {level.not_once} not once",
                    "ok": clean,
                }
            )
    rows.append(
        {
            "what": "every server exits 0 after SIGTERM (`nmtkit serve --help`)",
            "value": ", ".join(
                f"{name} {s.exit_status}{' (killed)' * s.killed}" for name, s in servers.items()
            ),
            "ok": all(s.exit_status == 0 and not s.killed for s in servers.values()),
        }
    )
    return rows


def render(
    levels: list[Level],
    checked: Level | None,
    base: Offline,
    found: list[dict],
    *,
    run: str,
    command: str,
    servers: dict[str, ServerRun],
    threads: str,
) -> str:
    table = [
        "| server | clients | requests | seconds | sentences/s | p50 ms | p95 ms | p99 ms "
        "| sentences / batch | tokens / batch | CPU s: loop, worker, client | errors, mismatches "
        "| load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in [*levels, *([checked] if checked else [])]:
        name = "batched (check)" if lv is checked else lv.server
        table.append(
            f"| {name} | {lv.clients} | {lv.sent:,} | {lv.seconds:.1f} | {lv.sent_per_s:,.1f} "
            f"| {lv.p50_ms:,.0f} | {lv.p95_ms:,.0f} | {lv.p99_ms:,.0f} | {lv.batch_sentences:.1f} "
            f"| {lv.batch_tokens:,.0f} | {lv.loop_cpu_s:.1f}, {lv.worker_cpu_s:.1f}, "
            f"{lv.client_cpu_s:.1f} | {lv.errors}, {lv.mismatches} "
            f"| {lv.load_start:.1f}, {lv.load_end:.1f} |"
        )
    table.append(
        f"| offline, one call | - | {base.sentences:,} | {base.seconds:.1f} "
        f"| {base.sent_per_s:,.1f} | | | | | | | | |"
    )
    for chunk in base.chunks:
        table.append(
            f"| offline, chunks of {chunk['size']:g} | - | {chunk['sentences']:,.0f} "
            f"| {chunk['sentences'] / chunk['sent_per_s']:.1f} | {chunk['sent_per_s']:,.1f} "
            f"| | | | {chunk['size']:g} | | | | |"
        )
    batched_args = " ".join(servers["batched"].args[7:]) if "batched" in servers else ""
    unbatched_args = " ".join(servers["unbatched"].args[7:]) if "unbatched" in servers else ""
    stops = ", ".join(
        f"{name}: exit {s.exit_status} in {s.stop_s:.1f} s{' (killed)' * s.killed}"
        for name, s in servers.items()
    )
    found_lines = [
        f"- {c['what']}: **{c['value']}**" + ("" if c.get("ok", True) else " (FAILED)")
        for c in found
    ]
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {cpu_description()}, torch "
        f"{version('torch')} ({threads}), Python {sys.version.split()[0]}, uvicorn "
        f"{version('uvicorn')} (pure-Python HTTP: no uvloop, no httptools), httpx "
        f"{version('httpx')}; measured {time.strftime('%Y-%m-%d')}. The clients run on the "
        "same cores as the server, and other jobs may share the machine (see the load "
        "averages).",
        "",
        f"Model: `{run}`; sentences: its test split's source side, in order, cycled. Servers: "
        f"`nmtkit serve -m RUN --port FREE {batched_args}` (batched: the defaults, up to 6,000 "
        f"source tokens per search after waiting at most 5 ms) and `{unbatched_args}` "
        "(unbatched: every request searched alone). Each client sends one sentence per "
        "request and its next request when the answer is in (closed loop); a level sends "
        f"max(--requests, {MIN_PER_CLIENT} x clients) requests after {WARMUP_REQUESTS} "
        "unmeasured warm-up requests per server. Latency: send to parsed answer, in this "
        "process. Sentences per batch and tokens per batch: `/metrics` "
        "(`nmtkit_batch_sentences`, `nmtkit_batch_tokens`) before and after the level. CPU "
        "seconds during the level: the server's event-loop thread (HTTP, JSON, pydantic), its "
        "other threads (the batch worker's search and torch's OpenMP threads), this client "
        "process. Offline: the same model through `Translator.translate` in this process, "
        f"the recipe's decode settings and beam {BEAM}, translation time only (loading and a "
        f"64-line warm-up excluded): all {base.sentences:,} sentences in one call (sorted by "
        "length into the recipe's 8,000-token batches), and in consecutive chunks of 1 and "
        "of the most clients, one call per chunk (for at most "
        f"{CHUNK_SECONDS:g} s each): the best a server can do when that many one-sentence "
        "requests wait, with no HTTP at all. Every answer "
        "is checked: answered exactly once, status 200, its source, and the best text equal to "
        "the offline one; the server's request counter equals the requests sent.",
        "",
        *table,
        "",
        "Measured:",
        "",
        *found_lines,
        "",
        *limits(levels, base),
        *soak_lines(checked),
        f"Servers stopped with SIGTERM: {stops}.",
    ]
    return "\n".join(lines)


def soak_lines(checked: Level | None) -> list[str]:
    """The soak (the check level): its malformed requests by kind, and what became of all."""
    if checked is None:
        return []
    table = ["| malformed kind | sent | statuses | expected |", "|---|---:|---|---:|"]
    for kind, wanted in BAD_KINDS.items():
        statuses = checked.bad_statuses.get(kind, {})
        shown = ", ".join(f"{n:,} x {status}" for status, n in sorted(statuses.items()))
        table.append(f"| {kind} | {sum(statuses.values()):,} | {shown or '-'} | {wanted} |")
    restarts = ", ".join(f"{m} {v:g}" for m, v in checked.worker_restarts.items()) or "none"
    return [
        f"Soak (the check): {checked.sent:,} requests from {checked.clients} clients to the "
        f"batched server, request k malformed where k mod {BAD_EVERY} = {BAD_EVERY - 1} "
        f"(the kinds below in turn): {checked.good:,} good, {checked.bad:,} malformed, "
        f"{checked.bad_4xx_json:,} of them answered 4xx with a JSON error; good requests "
        f"lost {checked.lost}, changed {checked.changed}; worker restarts "
        f"(`nmtkit_worker_restarts_total` at the end): {restarts}. "
        f"{checked.requests_per_s:,.1f} requests/s ({checked.sent_per_s:,.1f} good "
        f"sentences/s) over {checked.seconds:.1f} s; latency of the good requests p50 "
        f"{checked.p50_ms:,.0f} ms, p95 {checked.p95_ms:,.0f} ms, p99 {checked.p99_ms:,.0f} "
        f"ms, max {checked.max_ms:,.0f} ms.",
        "",
        *table,
        "",
    ]


def limits(levels: list[Level], base: Offline) -> list[str]:
    """What bounds the batched server at the most clients, from the figures above."""
    most = max(lv.clients for lv in levels)
    batched = next((lv for lv in levels if lv.server == "batched" and lv.clients == most), None)
    chunked = {chunk["size"]: chunk["sent_per_s"] for chunk in base.chunks}
    if batched is None or most not in chunked or not batched.sent:
        return []
    per_request = (
        1000 * batched.loop_cpu_s / batched.sent,
        1000 * batched.client_cpu_s / batched.sent,
    )
    return [
        f"What bounds it, at {most} clients: a search holds {batched.batch_sentences:.1f} "
        f"sentences on average (at most {most}: one per client). The same search on chunks of "
        f"{most} consecutive sentences, without HTTP, makes {chunked[most]:,.1f} sentences/s "
        f"({chunked[most] / base.sent_per_s:.0%} of the one-call offline rate, which sorts "
        f"{base.sentences:,} sentences by length into 8,000-token batches); the server makes "
        f"{batched.sent_per_s / chunked[most]:.0%} of that. Per request, the server's event loop "
        f"spent {per_request[0]:.1f} ms of CPU (holding the GIL the search also needs) and the "
        f"httpx client {per_request[1]:.1f} ms, on the same cores; the server's search "
        f"threads used {batched.worker_cpu_s / batched.seconds:.2f} CPU-seconds per second "
        f"(offline: about {os.cpu_count()}, one per core).",
        "",
    ]


def test_sentences(run: Path) -> tuple[Path, list[str]]:
    """The run directory and the source side of its first test split."""
    from nmtkit.data.manifest import PreparedData
    from nmtkit.evaluate.run import find_test_splits, open_run

    paths, _ = open_run(run)
    data = PreparedData.open(paths.data)
    return paths.root, data.read_text(find_test_splits(data, paths.root)[0], "src")


def measure_server(
    name: str,
    run: Path,
    options: list[str],
    clients: list[int],
    args: argparse.Namespace,
    sentences: list[str],
    expected: list[str],
    servers: dict[str, ServerRun],
    check_requests: int = 0,
    bounds: Limits | None = None,
) -> tuple[list[Level], Level | None]:
    """Start one server, run its levels (and the check, a soak with one request in
    BAD_EVERY malformed), stop it."""
    levels: list[Level] = []
    checked = None
    with serving(run, options, threads=args.threads) as (base, proc, record):
        servers[name] = record
        print(f"{name} server ready in {record.ready_s:.1f} s: {' '.join(record.args)}")
        warm_up(base, sentences)
        for count in clients:
            requests = max(args.requests, MIN_PER_CLIENT * count)
            levels.append(
                run_level(
                    base,
                    proc.pid,
                    name,
                    count,
                    requests,
                    sentences,
                    expected,
                    args.level_timeout,
                )
            )
            print(levels[-1].row(), flush=True)
        if check_requests:
            checked = run_level(
                base,
                proc.pid,
                name,
                max(clients),
                check_requests,
                sentences,
                expected,
                args.level_timeout,
                BAD_EVERY,
                bounds,
            )
            print("check:", checked.row(), flush=True)
    if record.exit_status != 0 or record.killed:
        print(f"{name} server: exit status {record.exit_status} after SIGTERM", file=sys.stderr)
    return levels, checked


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", default=REPO / "runs" / "demo")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--unbatched-clients", type=int, nargs="*", default=[1, 8, 64], help="(none: skip)"
    )
    parser.add_argument(
        "--requests", type=int, default=400, help=f"per level (at least {MIN_PER_CLIENT}/client)"
    )
    parser.add_argument(
        "--check-requests", type=int, default=10_000, help="at the most clients (0: skip)"
    )
    parser.add_argument("--level-timeout", type=float, default=300.0, help="seconds per level")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the servers and offline")
    parser.add_argument("--server-option", action="append", default=[], help="extra serve args")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only (smoke runs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run, sentences = test_sentences(args.run)
    print(f"offline: {len(sentences):,} sentences, beam {BEAM}", flush=True)
    sizes = sorted({1, max(args.clients)})
    base = offline(run, sentences, args.threads, sizes)
    expected = base.texts
    print(f"offline: {base.seconds:.1f} s, {base.sent_per_s:,.1f} sentences/s", flush=True)
    for chunk in base.chunks:
        print(f"offline, chunks of {chunk['size']:g}: {chunk['sent_per_s']:,.1f}/s", flush=True)

    servers: dict[str, ServerRun] = {}
    common = ["--device", "cpu", *args.server_option]
    levels, checked = measure_server(
        "batched",
        run,
        common,
        args.clients,
        args,
        sentences,
        expected,
        servers,
        args.check_requests,
        Limits.of(args.server_option),
    )
    if args.unbatched_clients:
        more, _ = measure_server(
            "unbatched",
            run,
            [*common, "--max-batch-tokens", "1"],
            args.unbatched_clients,
            args,
            sentences,
            expected,
            servers,
        )
        levels += more
    found = checks(levels, base, checked, servers)
    command = shown_command(
        "serve_load.py", sys.argv[1:] if argv is None else argv, positional=["RUN"]
    )
    env = child_env(args.threads)
    count = env.get("OMP_NUM_THREADS")
    threads = f"{count} thread{'s' * (count != '1')}" if count else "one thread per core"
    body = render(
        levels,
        checked,
        base,
        found,
        run=shown_path(run, "RUN"),
        command=command,
        servers=servers,
        threads=threads,
    )
    print(body)
    for level in [*levels, *([checked] if checked else [])]:
        for problem in level.problems:
            print(f"{level.server} {level.clients} clients: {problem}", file=sys.stderr)
    if not args.no_write:
        update_json(
            args.out.with_suffix(".json"),
            {
                "serve": {
                    "run": shown_path(run, "RUN"),
                    "command": command,
                    "beam": BEAM,
                    "thread_env": {name: env[name] for name in THREAD_ENV if name in env},
                    "offline": {
                        "sentences": base.sentences,
                        "seconds": round(base.seconds, 2),
                        "sent_per_s": round(base.sent_per_s, 1),
                        "chunks": [
                            {k: round(v, 1) for k, v in chunk.items()} for chunk in base.chunks
                        ],
                    },
                    "levels": [lv.row() for lv in levels],
                    "check": checked.row() if checked else None,
                    "servers": {
                        name: {k: v for k, v in asdict(s).items() if k != "stderr_tail"}
                        for name, s in servers.items()
                    },
                    "checks": found,
                }
            },
        )
        write_section(args.out, SECTION, body)
    wrong = any(lv.problems for lv in [*levels, *([checked] if checked else [])])
    return 1 if wrong else 0  # a wrong answer is an error; the speed figures are reported


if __name__ == "__main__":
    sys.exit(main())
