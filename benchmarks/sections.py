"""Write one benchmark's section of docs/benchmarks.md (between its markers) and its JSON key.

A generated block is everything between `<!-- NAME:start -->` and `<!-- NAME:end -->`; a writer
replaces only that. Headings and the hand-written reading of a section stay outside the markers,
so a rerun never touches them. The rule `write_section` holds (and tests/test_benchmarks_doc.py
checks on the docs): every marker is on a line of its own, each name has one start and one end
after it, no section's markers lie inside another's, and a generated block holds no markers and
no Markdown headings. A file that breaks the rule is refused, unchanged, with the reason.

Commands printed in a block come from `shown_command`: repository paths relative to the
repository root, any other path (a scratch folder, a corpus elsewhere) as a placeholder named
after its option, so the docs never carry a machine's own folders.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- ([A-Za-z0-9_.-]+):(start|end) -->")
PYTHON = ".venv/bin/python"


class MarkerError(ValueError):
    """The file's markers (or a block's text) break the rule above; nothing was written."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def headings(text: str) -> list[str]:
    """The Markdown heading lines of `text`, fenced code blocks left out."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r" {0,3}#{1,6}(\s|$)", line):
            found.append(line)
    return found


def blocks(text: str) -> dict[str, tuple[int, int]]:
    """Each section's (start, end) character offsets: start after its start marker's line,
    end at its end marker. Raises MarkerError where the markers are not one flat, well-formed
    start/end pair per name on lines of their own."""
    spans: dict[str, tuple[int, int]] = {}
    open_name: str | None = None
    open_at = 0
    for match in MARKER.finditer(text):
        name, kind = match.group(1), match.group(2)
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end < 0 else line_end
        if text[line_start:line_end].strip() != match.group(0):
            raise MarkerError(f"marker {match.group(0)} shares its line with other text")
        if kind == "start":
            if open_name is not None:
                raise MarkerError(
                    f"{match.group(0)} lies inside section {open_name!r} (its markers would "
                    "enclose another's)"
                )
            if name in spans:
                raise MarkerError(f"section {name!r} has two start markers")
            open_name, open_at = name, min(line_end + 1, len(text))
        else:
            if open_name != name:
                where = (
                    f"inside section {open_name!r}" if open_name else "without a start before it"
                )
                if name in spans:
                    raise MarkerError(f"section {name!r} has two end markers")
                raise MarkerError(f"{match.group(0)} is {where}")
            spans[name] = (open_at, line_start)
            open_name = None
    if open_name is not None:
        raise MarkerError(f"section {open_name!r} has a start marker and no end after it")
    return spans


def check_body(name: str, body: str) -> None:
    """A generated block holds no markers and no headings (they belong outside)."""
    if MARKER.search(body):
        raise MarkerError(f"the text for section {name!r} contains a marker")
    if found := headings(body):
        raise MarkerError(
            f"the text for section {name!r} contains a heading ({found[0]!r}); headings are "
            "hand-written, outside the markers"
        )


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between `name`'s markers, or append the section when the file has
    neither marker. Raises MarkerError, writing nothing, when the file's markers are broken
    (one side missing, duplicated, nested or overlapping) or `body` holds markers or headings."""
    start, end = markers(name)
    check_body(name, body)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    spans = blocks(text)
    block = body.strip() + "\n"
    if name in spans:
        begin, finish = spans[name]
        text = text[:begin] + block + text[finish:]
    else:
        text = text.rstrip("\n") + f"\n\n{start}\n{block}{end}\n"
    blocks(text)  # the result must hold the rule too
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def update_json(path: Path, values: dict[str, Any]) -> None:
    """Set top-level keys of the JSON results file, keeping the other benchmarks' keys."""
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results.update(values)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def shown_path(path: str | Path, placeholder: str = "PATH") -> str:
    """`path` relative to the repository root when it lies there (outside a hidden folder such
    as .venv), else `placeholder`."""
    resolved = Path(path).expanduser().resolve()
    if resolved.is_relative_to(REPO):
        relative = resolved.relative_to(REPO)
        if not relative.parts or not relative.parts[0].startswith("."):
            return relative.as_posix() or "."
    return placeholder


def _looks_like_path(text: str) -> bool:
    return ("/" in text and "://" not in text) or text in (".", "..", "~")


def _placeholder(option: str) -> str:
    return re.sub(r"\W+", "_", option.lstrip("-").rsplit(".", 1)[-1]).strip("_").upper() or "PATH"


def shown_command(script: str, argv: Sequence[str], positional: Sequence[str] = ()) -> str:
    """The command line `.venv/bin/python benchmarks/SCRIPT ARGV...` as the docs show it: paths
    through `shown_path`, a path outside the repository named after its option (`--work WORK`,
    `train.init_from=INIT_FROM`) or, before any option, after `positional` (default PATH)."""
    parts = [PYTHON, f"benchmarks/{script}"]
    option, index = "", 0
    for arg in argv:
        key, eq, value = arg.partition("=")
        if arg.startswith("--"):
            if eq and _looks_like_path(value):
                arg = f"{key}={shown_path(value, _placeholder(key))}"
            option = "" if eq else key
        elif eq and not _looks_like_path(key) and _looks_like_path(value):
            arg = f"{key}={shown_path(value, _placeholder(key))}"  # a --set KEY=PATH
        elif _looks_like_path(arg):
            name = positional[index] if index < len(positional) else "PATH"
            arg = shown_path(arg, _placeholder(option) if option else name)
        if not option and not arg.startswith("-"):
            index += 1
        parts.append(arg)
    return " ".join(parts)


def cpu_description() -> str:
    """This machine's CPU as the docs name it: cores, model, and the vector units that matter
    here (AVX-512; AMX, which makes bf16 matrix products fast)."""
    model, flags = "", set[str]()
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not model:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
    units = [name for flag, name in (("avx512f", "AVX-512"), ("amx_bf16", "AMX")) if flag in flags]
    extra = f" ({', '.join(units)})" if units else ""
    return f"{os.cpu_count()} CPU cores, {model or platform.machine()}{extra}"
