"""`nmtkit evaluate RUN`: translate a run's test split(s) with its best checkpoint and score them.

For each prepared split whose name starts with `test`, the cleaned source text
(`RUN_DIR/data/text/<split>.<src>`) is translated with the recipe's `decode:` settings into
`RUN_DIR/translations/<split>.<tgt>`, then scored against the references by the same code as
`nmtkit evaluate --hyp ... --ref ...`, bucketed as the recipe's `evaluate:` section says. The
report goes to `RUN_DIR/reports/<split>.json` and the plot to `RUN_DIR/reports/<split>.png`.

The run's checkpoint is loaded once (`nmtkit.Translator`) for all its test splits.
`evaluate_run_command` is `evaluate_run` from the command line's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nmtkit import console
from nmtkit.data.manifest import PreparedData
from nmtkit.errors import UserError
from nmtkit.evaluate.buckets import check_by, parse_edges
from nmtkit.evaluate.files import evaluate_files
from nmtkit.evaluate.report import LengthReport
from nmtkit.paths import RunPaths
from nmtkit.recipe import LengthBy, Recipe, load_recipe

if TYPE_CHECKING:
    from nmtkit.translate import DecodeOptions


@dataclass(frozen=True)
class SplitResult:
    """One test split of a run: its translations and its report, written as JSON and a plot."""

    split: str
    translations: Path
    report: LengthReport
    json_path: Path
    plot_path: Path


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


def evaluate_run_command(
    target: Path,
    *,
    by: str | None = None,
    buckets: str | None = None,
    device: str = "auto",
    hyp: str | None = None,
    ref: Path | None = None,
    compare: Sequence[str] | None = None,
) -> list[SplitResult]:
    """`evaluate_run` from the command line's options as given: `by` and the bucket edges
    `buckets` (`10,20,30`) as text, checked here, and each split's outputs named on stderr.
    The file mode's `hyp`, `ref` and `compare` are refused: a run brings its own."""
    edges = None if buckets is None else parse_edges(buckets)
    if hyp is not None or ref is not None or compare:
        raise UserError("give either a run directory (or recipe) or --hyp/--ref, not both")
    results = evaluate_run(
        target, device=device, by=None if by is None else check_by(by), edges=edges
    )
    for result in results:
        console.info(f"{result.split}: translations {result.translations}, plot {result.plot_path}")
    return results


def evaluate_run(
    target: Path,
    *,
    device: str = "auto",
    by: LengthBy | None = None,
    edges: Sequence[int] | None = None,
    n_bootstrap: int = 1000,
    options: DecodeOptions | None = None,
) -> list[SplitResult]:
    """Translate and score every test split of a run with its best checkpoint. `by` and
    `edges` override the recipe's `evaluate:` section; `options` (default: the checkpoint's
    recipe's `decode:`) the search."""
    from nmtkit.translate import Translator, resolve_checkpoint
    from nmtkit.translate_files import translate_file

    paths, recipe = open_run(target)
    data = PreparedData.open(paths.data)
    splits = find_test_splits(data, paths.root)
    checkpoint = resolve_checkpoint(paths.root)
    translator = Translator.load(checkpoint, device=device)
    results = []
    for split in splits:
        source, reference = data.text(split, "src"), data.text(split, "tgt")
        hyp = paths.translations / reference.name
        console.info(f"translating {split} ({source}) with {checkpoint}")
        translate_file(translator, options, input_path=source, output_path=hyp, show_progress=True)
        json_path, plot_path = paths.reports / f"{split}.json", paths.reports / f"{split}.png"
        report = evaluate_files(
            {recipe.name: hyp},
            reference,
            source,
            by=by or recipe.evaluate.by,
            edges=recipe.evaluate.buckets if edges is None else edges,
            n_bootstrap=n_bootstrap,
            json_path=json_path,
            plot_path=plot_path,
        )
        results.append(SplitResult(split, hyp, report, json_path, plot_path))
    return results
