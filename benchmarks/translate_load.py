"""`nmtkit translate` on N lines through stdin: peak memory and throughput at several N.

    python benchmarks/translate_load.py runs/demo --lines 100000 1000000 --batch-tokens 4000

For each N, `python -m nmtkit translate -m MODEL` runs as a fresh process with its stdin and
stdout on pipes, so its peak RSS (`os.wait4`'s `ru_maxrss`) is that run's own. A feeder thread
writes N lines made on the fly, cycling through the source side of the run's test split with a
fixed, irregular 2% of empty lines, so the benchmark holds none of the input in memory; a reader
thread checks that exactly N lines come back and that every empty input line gives an empty
output line at the same index (an order check: a shift or a lost line breaks it). Wall time runs
from starting the process to its exit (start-up and model loading included). Results go to the
`translate-load` section of the Markdown file and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO

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

SECTION = "translate-load"

EMPTY_PER_MILLE = 20  # input lines left empty, chosen by a hash of the line index
FEED_CHUNK = 1024  # lines written to the pipe at once
SAMPLE_SECONDS = 1.0  # how often the child's current RSS is read from /proc
PROGRESS_SECONDS = 60.0  # how often a verbose run prints its progress
MAX_RATIO = 1.2  # peak RSS at the largest N / at the smallest N must stay under this
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")  # shown with the command


def is_empty(index: int) -> bool:
    """Whether input line `index` (0-based) is empty: irregular, so a shifted output shows."""
    return zlib.crc32(index.to_bytes(8, "little")) % 1000 < EMPTY_PER_MILLE


def input_line(sources: list[bytes], index: int) -> bytes:
    return b"" if is_empty(index) else sources[index % len(sources)]


@dataclass
class LoadResult:
    """One run of the child on `lines` input lines."""

    lines: int
    seconds: float = 0.0  # process start to exit
    first_output_s: float = 0.0  # process start to the first output line
    lines_out: int = 0
    empty_inputs: int = 0
    empty_outputs_for_text: int = 0  # non-empty input, empty translation (reported, allowed)
    target_words: int = 0  # whitespace-separated words of the output text
    peak_rss_mib: float = 0.0  # ru_maxrss of the child
    rss_mib_at_10pct: float = 0.0  # current RSS once 10% of the lines were out (0: not seen)
    cpu_seconds: float = 0.0  # child user + system time
    load_start: float = 0.0  # 1-minute load average when the child starts and when it ends:
    load_end: float = 0.0  # other jobs on the machine slow the child down
    returncode: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def sent_per_s(self) -> float:
        return self.lines_out / self.seconds

    @property
    def tgt_words_per_s(self) -> float:
        return self.target_words / self.seconds

    def row(self) -> dict:
        """The JSON record: the fields, rounded, and the rates."""
        row = {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}
        row["sent_per_s"] = round(self.sent_per_s, 1)
        row["tgt_words_per_s"] = round(self.tgt_words_per_s)
        return row


def feed(stdin: IO[bytes], sources: list[bytes], lines: int) -> None:
    """Write `lines` input lines in chunks, then close stdin (the child's end of input)."""
    try:
        for start in range(0, lines, FEED_CHUNK):
            chunk = range(start, min(start + FEED_CHUNK, lines))
            stdin.write(b"".join(input_line(sources, i) + b"\n" for i in chunk))
        stdin.close()
    except BrokenPipeError:  # the child died; the reader and the return code report it
        pass


def read_output(stdout: IO[bytes], result: LoadResult, started: float) -> None:
    """Count the output lines, their words, and check the empty-line invariant."""
    for index, raw in enumerate(stdout):
        if index == 0:
            result.first_output_s = time.perf_counter() - started
        text = raw.rstrip(b"\n")
        words = len(text.split())
        if index < result.lines and is_empty(index):
            result.empty_inputs += 1
            if words and len(result.problems) < 5:
                result.problems.append(f"output line {index + 1}: empty input, got {text[:60]!r}")
        elif not words:
            result.empty_outputs_for_text += 1
        result.target_words += words
        result.lines_out = index + 1
    if result.lines_out != result.lines:
        result.problems.append(f"{result.lines_out:,} output lines for {result.lines:,} input")


def current_rss_kib(pid: int) -> int | None:
    """VmRSS of a live process, None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def watch_child(pid: int, result: LoadResult, stop: threading.Event, verbose: bool) -> None:
    """Record the child's RSS once a tenth of the lines are out (growth within one run); with
    `verbose`, print progress and the current RSS to stderr every `PROGRESS_SECONDS`."""
    started = last_print = time.perf_counter()
    while not stop.wait(SAMPLE_SECONDS):
        rss = current_rss_kib(pid)
        if rss is None:
            continue
        if result.lines_out >= result.lines // 10 and not result.rss_mib_at_10pct:
            result.rss_mib_at_10pct = rss / 1024
        now = time.perf_counter()
        if verbose and now - last_print >= PROGRESS_SECONDS:
            last_print = now
            rate = result.lines_out / (now - started)
            print(
                f"  {result.lines_out:,}/{result.lines:,} lines, {rate:,.0f}/s, "
                f"RSS {rss / 1024:,.1f} MiB, load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )


def child_env(threads: int | None) -> dict[str, str]:
    """This process's environment, with the repository on PYTHONPATH and `threads` (if given)
    as OMP_NUM_THREADS."""
    pythonpath = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def translate_command(model: Path, decode_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "nmtkit", "translate", "-m", str(model), *decode_args]


def run_load(
    model: Path,
    lines: int,
    sources: list[str],
    decode_args: list[str],
    *,
    threads: int | None = None,
    verbose: bool = False,
) -> LoadResult:
    """Translate `lines` generated lines through a fresh `nmtkit translate` on pipes.

    `threads` sets the child's OMP_NUM_THREADS (torch's intra-op threads; None: torch's
    default, one per core)."""
    encoded = [s.encode("utf-8") for s in sources]
    result = LoadResult(lines=lines)
    stop = threading.Event()
    result.load_start = os.getloadavg()[0]
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            translate_command(model, decode_args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=child_env(threads),
        )
        workers = [
            threading.Thread(target=feed, args=(child.stdin, encoded, lines), daemon=True),
            threading.Thread(target=read_output, args=(child.stdout, result, started)),
            threading.Thread(
                target=watch_child, args=(child.pid, result, stop, verbose), daemon=True
            ),
        ]
        for worker in workers:
            worker.start()
        workers[1].join()  # stdout closed: the child is exiting
        stop.set()
        _, status, usage = os.wait4(child.pid, 0)
        result.seconds = time.perf_counter() - started
        child.returncode = result.returncode = os.waitstatus_to_exitcode(status)
        workers[0].join()
        child.stdout.close()
        stderr.seek(0)
        errors = stderr.read().decode("utf-8", "replace").strip()
    result.load_end = os.getloadavg()[0]
    result.peak_rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
    result.cpu_seconds = usage.ru_utime + usage.ru_stime
    if result.returncode != 0:
        result.problems.append(f"exit status {result.returncode}: {errors[-500:]}")
    return result


def default_source(model: Path) -> Path:
    """The source side of the model's run's first test split."""
    from nmtkit.data.manifest import PreparedData
    from nmtkit.evaluate.run import find_test_splits, open_run

    paths, _ = open_run(model)
    data = PreparedData.open(paths.data)
    return data.text(find_test_splits(data, paths.root)[0], "src")


def decode_arguments(args: argparse.Namespace) -> list[str]:
    search = ["--beam", str(args.beam)] if args.beam else ["--greedy"]
    return [*search, "--batch-tokens", str(args.batch_tokens), "--device", args.device]


def render(rows: list[LoadResult], *, source: str, child: str, command: str, threads: str) -> str:
    table = [
        "| lines | wall time (s) | first output (s) | sentences/s | target words/s "
        "| child CPU (s) | load avg start, end | RSS at 10% (MiB) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {r.lines:,} | {r.seconds:.1f} | {r.first_output_s:.1f} | {r.sent_per_s:,.1f} "
        f"| {r.tgt_words_per_s:,.0f} | {r.cpu_seconds:.0f} | {r.load_start:.1f}, {r.load_end:.1f} "
        f"| {f'{r.rss_mib_at_10pct:.1f}' if r.rss_mib_at_10pct else '-'} "
        f"| {r.peak_rss_mib:.1f} |"
        for r in rows
    ]
    lines = [
        f"Command: `{command}`  ",
        f"Child, one fresh process per size: `{child}`, stdin and stdout on pipes.  ",
        f"Machine: {cpu_description()}, torch {version('torch')} ({threads}), Python "
        f"{sys.version.split()[0]}; measured {time.strftime('%Y-%m-%d')}. Other jobs on the "
        "machine (see the load averages) slow the throughput, not the memory figures.",
        "",
        "Search: this script's defaults are greedy search with 4,000-token batches, the fastest "
        "setting in the decoding benchmark (about 800 sentences/s on 2 quiet cores), so that "
        "1,000,000 lines take about 21 minutes; beam 5 (about 275/s) would take an hour "
        "(`--beam 5`). On a busy machine, torch's default of one thread per core spends most "
        "of its time in OpenMP waits (8 to 18 times slower on 2 cores with one other job "
        "running); `--threads 1` keeps the time predictable there.",
        "",
        f"Input: `{source}` cycled, with {EMPTY_PER_MILLE / 10:g}% of the lines left empty "
        "(chosen by a hash of the line index), written on the fly by a feeder thread. Checked: "
        "exactly one output line per input line, and an empty output at every empty input's "
        "index. Wall time includes start-up and model loading; target words are the output's "
        "whitespace-separated words (not SentencePiece pieces, so not comparable with the "
        "decoding benchmark's tokens/s). Peak RSS is the child's `ru_maxrss` (`os.wait4`).",
        "",
        *table,
    ]
    empty = ", ".join(f"{r.empty_outputs_for_text:,}" for r in rows)
    lines += ["", f"Non-empty input lines translated as an empty line: {empty}."]
    if len(rows) >= 2:
        ratio = rows[-1].peak_rss_mib / rows[0].peak_rss_mib
        verdict = (
            "flat: `translate` reads stdin in windows of 4,096 lines, so memory does not grow "
            "with the input"
            if ratio < MAX_RATIO
            else "memory grows with the input"
        )
        lines += [
            "",
            f"Peak-memory ratio {rows[-1].lines:,} / {rows[0].lines:,} lines: **{ratio:.2f}** "
            f"({verdict}; flat means under {MAX_RATIO}).",
        ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=REPO / "runs" / "demo")
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--source", type=Path, help="lines to cycle (the run's test source)")
    search = parser.add_mutually_exclusive_group()
    search.add_argument("--greedy", action="store_true", help="greedy search (the default)")
    search.add_argument("--beam", type=int, help="beam search of this size instead of greedy")
    parser.add_argument("--batch-tokens", type=int, default=4000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="the child's OMP_NUM_THREADS (torch's default)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    source = args.source or default_source(args.model)
    sources = source.read_text(encoding="utf-8").splitlines()
    decode_args = decode_arguments(args)
    rows = []
    for lines in args.lines:
        rows.append(
            run_load(args.model, lines, sources, decode_args, threads=args.threads, verbose=True)
        )
        print(rows[-1].row(), flush=True)
        if rows[-1].problems:
            sys.exit("translate-load: " + "; ".join(rows[-1].problems))
    command = shown_command("translate_load.py", sys.argv[1:], positional=["MODEL"])
    child = "nmtkit translate -m " + " ".join([shown_path(args.model, "MODEL"), *decode_args])
    env = child_env(args.threads)
    child = " ".join([*(f"{name}={env[name]}" for name in THREAD_ENV if name in env), child])
    count = env.get("OMP_NUM_THREADS")
    threads = f"{count} thread{'s' * (count != '1')}" if count else "one thread per core"
    body = render(
        rows, source=shown_path(source, "SOURCE"), child=child, command=command, threads=threads
    )
    print(body)
    ratio = rows[-1].peak_rss_mib / rows[0].peak_rss_mib
    update_json(
        args.out.with_suffix(".json"),
        {
            "translate_load": {
                "model": shown_path(args.model, "MODEL"),
                "decode_args": decode_args,
                "thread_env": {name: env[name] for name in THREAD_ENV if name in env},
                "rows": [r.row() for r in rows],
                "peak_rss_ratio": round(ratio, 3),
            }
        },
    )
    write_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
