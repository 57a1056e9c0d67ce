"""`nmtkit evaluate --hyp ... --ref ...`: score translation files, print the report and write it.

Every file has one detokenized sentence per line: one or more systems' translations (`--hyp`,
then `--compare`; the first is the baseline of the significance tests), the references and,
for buckets by source length, the sources. `evaluate_files` builds the report
(`nmtkit.evaluate.report`), prints it (`tables`) and writes it as JSON (`export`) and as a
plot (`plot`) when asked; `evaluate_files_command` is the same from the command line's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nmtkit.console import info
from nmtkit.errors import UserError
from nmtkit.evaluate.buckets import DEFAULT_EDGES, check_by, parse_edges
from nmtkit.evaluate.export import write_report_json
from nmtkit.evaluate.plot import plot_format, plot_report
from nmtkit.evaluate.report import LengthReport, build_report
from nmtkit.evaluate.tables import print_report
from nmtkit.recipe import LengthBy


def parse_system(spec: str) -> tuple[str, Path]:
    """`NAME=FILE` -> (NAME, FILE); a plain `FILE` is named by its stem (`out/base.de` -> base)."""
    name, sep, file = spec.partition("=")
    if sep and name and file and not Path(spec).exists():
        return name, Path(file)
    return Path(spec).stem, Path(spec)


def name_systems(specs: Sequence[str]) -> dict[str, Path]:
    """Systems from `[NAME=]FILE` specs, in order; two systems with one name are an error."""
    systems: dict[str, Path] = {}
    for spec in specs:
        name, path = parse_system(spec)
        if name in systems:
            raise UserError(
                f"two systems are named {name!r} ({systems[name]} and {path}); "
                "name them with NAME=FILE"
            )
        systems[name] = path
    return systems


def evaluate_files_command(
    hyp: str | None,
    ref: Path | None,
    src: Path | None = None,
    *,
    compare: Sequence[str] | None = None,
    by: str | None = None,
    buckets: str | None = None,
    json_path: Path | None = None,
    plot_path: Path | None = None,
) -> LengthReport:
    """`evaluate_files` from the command line's options as given: `[NAME=]FILE` specs for `hyp`
    and `compare`, `by` and the bucket edges `buckets` (`10,20,30`) as text, checked here."""
    edges = DEFAULT_EDGES if buckets is None else parse_edges(buckets)
    if hyp is None or ref is None:
        raise UserError("give --hyp FILE and --ref FILE, or a run directory (or recipe)")
    return evaluate_files(
        name_systems([hyp, *(compare or [])]),
        ref,
        src,
        by=None if by is None else check_by(by),
        edges=edges,
        json_path=json_path,
        plot_path=plot_path,
    )


def evaluate_files(
    systems: Mapping[str, Path],
    ref: Path,
    src: Path | None = None,
    *,
    by: LengthBy | None = None,
    edges: Sequence[int] = DEFAULT_EDGES,
    n_bootstrap: int = 1000,
    json_path: Path | None = None,
    plot_path: Path | None = None,
) -> LengthReport:
    """Read systems (name -> hypothesis file; the first is the baseline), references and
    optional sources, one detokenized sentence per line; build the report, print it, and write
    it as JSON and as a plot when asked. `by` defaults to source when `src` is given."""
    if plot_path is not None:
        plot_format(plot_path)  # a bad file name fails now, not after the scoring
    by = by or ("source" if src is not None else "reference")
    files = _read_aligned([*systems.values(), ref] + ([] if src is None else [src]))
    if not files[ref]:
        raise UserError(f"nothing to evaluate: {ref} is empty")
    report = build_report(
        {name: files[path] for name, path in systems.items()},
        files[ref],
        None if src is None else files[src],
        by=by,
        edges=edges,
        n_bootstrap=n_bootstrap,
    )
    print_report(report)
    if json_path is not None:
        write_report_json(report, json_path)
        info(f"wrote {json_path}")
    if plot_path is not None:
        plot_report(report, plot_path)
        info(f"wrote {plot_path}")
    return report


def _read_aligned(paths: Sequence[Path]) -> dict[Path, list[str]]:
    """Each file's lines; a UserError naming every file's line count unless they all agree."""
    from nmtkit.data.sources import read_lines

    files = {path: list(read_lines(path)) for path in paths}
    counts = {path: len(lines) for path, lines in files.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{path} has {n}" for path, n in counts.items())
        raise UserError(f"the files must have one line per sentence, but {listing} lines")
    return files
