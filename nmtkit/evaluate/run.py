"""`nmtkit evaluate`: score translation files, or translate a run's test splits and score them.

File mode (`--hyp ... --ref ...`, `evaluate_files`): every file has one detokenized sentence per
line: one or more systems' translations (`--hyp`, then `--compare`; the first is the baseline of
the significance tests), the references and, for buckets by source length, the sources. The
report is printed, and written as JSON and as a plot when asked.

Run mode (`RUN_DIR_OR_RECIPE`, `evaluate_run`): for each prepared split whose name starts with
`test`, the cleaned source text (`RUN_DIR/data/text/<split>.<src>`) is translated with the
recipe's `decode:` settings into `RUN_DIR/translations/<split>.<tgt>`, then scored as in file
mode, bucketed as the recipe's `evaluate:` section says. The report goes to
`RUN_DIR/reports/<split>.json` and the plot to `RUN_DIR/reports/<split>.png` (without
matplotlib, the `plot` extra, a one-line note instead: the scores and JSON stay). The run's
checkpoint is loaded once (`nmtkit.Translator`) for all its test splits. The training curves
are drawn again from the run's log into `RUN_DIR/reports/training.png` (`curves`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nmtkit.console import info
from nmtkit.errors import UserError
from nmtkit.evaluate.curves import write_training_plot
from nmtkit.evaluate.plot import plot_format, plot_report
from nmtkit.evaluate.report import DEFAULT_EDGES, LengthReport, build_report, check_by, parse_edges
from nmtkit.evaluate.tables import print_report, write_report_json
from nmtkit.extras import has_extra, note_skipped, require_extra
from nmtkit.paths import RunPaths
from nmtkit.recipe import LengthBy, Recipe, load_recipe

if TYPE_CHECKING:
    from nmtkit.data.manifest import PreparedData
    from nmtkit.translate import DecodeOptions


def evaluate_command(
    run: Path | None,
    hyp: str | None,
    ref: Path | None,
    src: Path | None,
    *,
    compare: Sequence[str] | None,
    by: str | None,
    buckets: str | None,
    json_path: Path | None,
    plot_path: Path | None,
    device: str,
) -> None:
    """`nmtkit evaluate` from the command line's options as given: a run (translated on
    `device`) or the file mode's `[NAME=]FILE` specs `hyp` and `compare`; `by` and the bucket
    edges `buckets` (`10,20,30`) as text, checked here. A run brings its own files, so `hyp`,
    `ref` and `compare` are refused with it; each split's outputs are named on stderr."""
    edges = None if buckets is None else parse_edges(buckets)
    if run is not None:
        if hyp is not None or ref is not None or compare:
            raise UserError("give either a run directory (or recipe) or --hyp/--ref, not both")
        by_ = None if by is None else check_by(by)
        for result in evaluate_run(run, device=device, by=by_, edges=edges):
            plotted = "" if result.plot_path is None else f", plot {result.plot_path}"
            info(f"{result.split}: translations {result.translations}{plotted}")
        return
    if hyp is None or ref is None:
        raise UserError("give --hyp FILE and --ref FILE, or a run directory (or recipe)")
    evaluate_files(
        name_systems([hyp, *(compare or [])]),
        ref,
        src,
        by=None if by is None else check_by(by),
        edges=DEFAULT_EDGES if edges is None else edges,
        json_path=json_path,
        plot_path=plot_path,
    )


def name_systems(specs: Sequence[str]) -> dict[str, Path]:
    """Systems from `[NAME=]FILE` specs, in order (a plain `FILE` is named by its stem:
    `out/base.de` -> base); two systems with one name are an error."""
    systems: dict[str, Path] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if sep and name and file and not Path(spec).exists():
            path = Path(file)
        else:
            name, path = Path(spec).stem, Path(spec)
        if name in systems:
            raise UserError(
                f"two systems are named {name!r} ({systems[name]} and {path}); "
                "name them with NAME=FILE"
            )
        systems[name] = path
    return systems


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
    from nmtkit.data.sources import read_lines

    if plot_path is not None:  # a bad file name or no matplotlib fails now, before the scoring
        plot_format(plot_path)
        require_extra("plot", "nmtkit evaluate --plot")
    by = by or ("source" if src is not None else "reference")
    paths = [*systems.values(), ref] + ([] if src is None else [src])
    files = {path: list(read_lines(path)) for path in paths}
    if len({len(lines) for lines in files.values()}) > 1:
        listing = ", ".join(f"{path} has {len(lines)}" for path, lines in files.items())
        raise UserError(f"the files must have one line per sentence, but {listing} lines")
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


@dataclass(frozen=True)
class SplitResult:
    """One test split of a run: its translations and its report, written as JSON and a plot."""

    split: str
    translations: Path
    report: LengthReport
    json_path: Path
    plot_path: Path | None  # None without matplotlib (the `plot` extra)


def open_run(target: Path) -> tuple[RunPaths, Recipe]:
    """A run directory (or a recipe naming one) and its resolved recipe."""
    target = Path(target)
    if target.is_dir():
        paths = RunPaths(target)
        if not paths.recipe.is_file():
            raise UserError(
                f"{target} is not a run directory (no {paths.recipe.name}); give a run "
                "directory or a recipe"
            )
        recipe = load_recipe(paths.recipe)
        return RunPaths(target, recipe.data_dir), recipe
    recipe = load_recipe(target)
    return recipe.paths, recipe


def find_test_splits(data: PreparedData, root: Path) -> list[str]:
    """Prepared splits named test*, in the manifest's order."""
    found = [name for name in data.splits if name.startswith("test")]
    if not found:
        raise UserError(
            f"{root} has no test split (prepared: {', '.join(data.splits)}); add one to "
            "data.source in the recipe, or use `nmtkit evaluate --hyp FILE --ref FILE`"
        )
    return found


def evaluate_run(
    target: Path,
    *,
    device: str = "auto",
    by: LengthBy | None = None,
    edges: Sequence[int] | None = None,
    n_bootstrap: int = 1000,
    options: DecodeOptions | None = None,
) -> list[SplitResult]:
    """Translate and score every test split of a run with its best checkpoint, and with
    `avg.pt` beside it when the run averaged (`train.average_last`: one report, the averaged
    model as the second system, with significance against best.pt). `by` and `edges` override
    the recipe's `evaluate:` section; `options` (default: the checkpoint's recipe's `decode:`)
    the search. The training curves are drawn again once the checkpoints load."""
    from nmtkit.data.manifest import PreparedData
    from nmtkit.translate import Translator, resolve_checkpoint
    from nmtkit.translate_files import translate_file

    paths, recipe = open_run(target)
    data = PreparedData.open(paths.data)
    splits = find_test_splits(data, paths.root)
    checkpoints = {recipe.name: resolve_checkpoint(paths.root)}
    averaged = paths.checkpoints / "avg.pt"
    if averaged.is_file():
        checkpoints[f"{recipe.name}.avg"] = averaged
    translators = {name: Translator.load(path, device=device) for name, path in checkpoints.items()}
    write_training_plot(paths)  # after the checks: a run that cannot be evaluated gets nothing
    plots = has_extra("plot")  # a by-product: without matplotlib, said once, the scores stay
    if not plots:
        note_skipped("the BLEU-by-length plots (reports/<split>.png)", "plot")
    results = []
    for split in splits:
        source, reference = data.text(split, "src"), data.text(split, "tgt")
        hyps = {}
        for name, translator in translators.items():
            suffix = name.removeprefix(recipe.name)  # "" or ".avg"
            hyp = hyps[name] = paths.translations / f"{split}{suffix}.{reference.suffix[1:]}"
            info(f"translating {split} ({source}) with {checkpoints[name]}")
            translate_file(
                translator, options, input_path=source, output_path=hyp, show_progress=True
            )
        json_path = paths.reports / f"{split}.json"
        plot_path = paths.reports / f"{split}.png" if plots else None
        report = evaluate_files(
            hyps,
            reference,
            source,
            by=by or recipe.evaluate.by,
            edges=recipe.evaluate.buckets if edges is None else edges,
            n_bootstrap=n_bootstrap,
            json_path=json_path,
            plot_path=plot_path,
        )
        results.append(SplitResult(split, hyps[recipe.name], report, json_path, plot_path))
    return results
