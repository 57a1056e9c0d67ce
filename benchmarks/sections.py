"""Write one benchmark's section of docs/benchmarks.md (between its markers) and its JSON key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between `name`'s markers (or append the section)."""
    start, end = markers(name)
    section = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def update_json(path: Path, values: dict[str, Any]) -> None:
    """Set top-level keys of the JSON results file, keeping the other benchmarks' keys."""
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results.update(values)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
