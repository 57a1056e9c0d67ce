"""`nmtkit translate` on files and streams: lines in, exactly as many lines out, in order.

Input is read by `data.sources.decode_lines` (the one line reader) and translated by
`Translator.translate_stream`; each result becomes one output line (`format_translation`). A
line break inside a translation becomes a space, so the line count never changes.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmtkit import console
from nmtkit.data.sources import decode_lines, one_line
from nmtkit.errors import Interrupts, UserError
from nmtkit.paths import partial_output, partial_path
from nmtkit.translate import WINDOW_LINES, DecodeOptions, Translation, Translator

FORMATS = ("text", "tsv", "jsonl")
MAX_WARNINGS = 10  # truncation warnings printed one by one; the rest are counted


@dataclass
class TranslateStats:
    lines: int = 0
    target_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0


def format_translation(result: Translation, fmt: str) -> str:
    """One output line (no newline): the best text, `text<TAB>score` per n-best, or JSON."""
    if fmt == "text":
        return one_line(result.texts[0])
    if fmt == "tsv":
        return "\t".join(
            f"{one_line(text)}\t{h.score:.4f}"
            for text, h in zip(result.texts, result.hyps, strict=False)
        )
    return json.dumps(result.to_record(), ensure_ascii=False)


def count_lines(path: Path) -> int:
    """Lines in a file (a last line without newline counts), for the progress bar."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def translate_file(
    translator: Translator,
    options: DecodeOptions | None = None,
    *,
    input_path: Path | None,
    output_path: Path | None,
    fmt: str = "text",
    show_progress: bool | None = None,
) -> TranslateStats:
    """`nmtkit translate`: a file (None: stdin) to a file (None: stdout), one line per line.

    `options` default to the translator's (its recipe's `decode:`). A file output is written
    as `NAME.PID.partial` (PID: this process's), fsynced and renamed when complete, so an
    interrupted run never leaves a truncated file under the final name; a failed write (disk
    full) is a WriteError and leaves no partial file. The progress bar (stderr) is on by
    default for a file input unless stdout is a pipe.
    """
    options = options or translator.defaults
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if input_path is not None and not input_path.is_file():
        raise UserError(f"input {input_path} does not exist or is not a file")
    if options.attention and fmt != "jsonl":
        raise UserError("--attention needs --format jsonl (the matrix goes into the JSON)")
    if show_progress is None:
        show_progress = input_path is not None and (output_path is not None or sys.stdout.isatty())
    stats = TranslateStats()

    def warn(message: str) -> None:
        stats.truncated += 1
        if stats.truncated <= MAX_WARNINGS:
            console.info(f"[yellow]warning:[/] {message}")

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if input_path is None:
            source, name = sys.stdin.buffer, "stdin"
        else:
            source, name = stack.enter_context(open(input_path, "rb")), str(input_path)
        # Interactive input: translate each line as it comes instead of waiting for a window.
        window = 1 if input_path is None and sys.stdin.isatty() else WINDOW_LINES
        done = _progress(stack, input_path) if show_progress else (lambda n: None)
        results = translator.translate_stream(
            decode_lines(source, name, allow_nul=True), options, warn=warn, done=done, window=window
        )
        if output_path is None:
            _write_results(results, sys.stdout, None, fmt, stats)
        else:
            _write_file(results, output_path, fmt, stats)
    stats.seconds = time.perf_counter() - start
    if stats.truncated > MAX_WARNINGS:
        console.info(f"[yellow]warning:[/] {stats.truncated} lines truncated in all")
    if show_progress:
        rate = stats.lines / max(stats.seconds, 1e-9)
        console.info(f"translated {stats.lines:,} lines in {stats.seconds:.1f} s ({rate:,.1f}/s)")
    return stats


def _progress(stack: contextlib.ExitStack, input_path: Path | None) -> Callable[[int], None]:
    """A progress bar (sentences/s) on stderr for the life of `stack`; returns its advance."""
    bar = stack.enter_context(console.progress("sentences"))
    total = count_lines(input_path) if input_path is not None else None
    task = bar.add_task("translate", total=total)
    return lambda n: bar.advance(task, n)


def _write_file(
    results: Iterable[Translation], path: Path, fmt: str, stats: TranslateStats
) -> None:
    """Write the results to `path` through its partial file (`paths.partial_output`)."""
    with partial_output(path) as out:
        _write_results(results, out, path, fmt, stats)


def _write_results(
    results: Iterable[Translation], out: Any, path: Path | None, fmt: str, stats: TranslateStats
) -> None:
    """Write one line per result to `out` (the partial file for a file `path`), counting them.
    SIGINT/SIGTERM stop it between lines, never inside one, and say what was kept."""
    with Interrupts() as interrupts:
        try:
            for result in results:
                with interrupts.deferred():
                    out.write(format_translation(result, fmt) + "\n")
                stats.lines += 1
                stats.target_tokens += len(result.hyps[0].tokens) + 1 if result.hyps else 0
            out.flush()
        except KeyboardInterrupt:
            if path is not None:
                out.flush()
                done = count_lines(partial_path(path))  # the signal may fall after a write
                console.info(
                    f"interrupted after {done:,} lines; they are in {partial_path(path)} "
                    f"({path} is written only by a complete run)"
                )
            raise
