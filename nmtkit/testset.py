"""`nmtkit evaluate RUN`: translate a run's test split(s) with its best checkpoint and score them.

For each prepared split whose name starts with `test`, the cleaned source text
(`RUN_DIR/data/text/<split>.<src>`) is translated with the recipe's `decode:` settings into
`RUN_DIR/translations/<split>.<tgt>`, then scored against the references by the same code as
`nmtkit evaluate --hyp ... --ref ...`, bucketed as the recipe's `evaluate:` section says. The
report goes to `RUN_DIR/reports/<split>.json` and the plot to `RUN_DIR/reports/<split>.png`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmtkit import console
from nmtkit.errors import UserError
from nmtkit.evaluate import LengthReport, evaluate_files
from nmtkit.length_buckets import LengthBy
from nmtkit.paths import RunPaths
from nmtkit.recipe import Recipe, load_recipe


@dataclass(frozen=True)
class SplitResult:
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


def find_test_splits(paths: RunPaths) -> list[str]:
    """Prepared splits named test*, in the manifest's order."""
    if not paths.manifest.is_file():
        raise UserError(f"no prepared data in {paths.data}; run `nmtkit prepare RECIPE` first")
    splits = json.loads(paths.manifest.read_text(encoding="utf-8"))["splits"]
    found = [name for name in splits if name.startswith("test")]
    if not found:
        raise UserError(
            f"{paths.root} has no test split (prepared: {', '.join(splits)}); add one to "
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
    **decode: Any,
) -> list[SplitResult]:
    """Translate and score every test split of a run. `by` and `edges` override the recipe's
    `evaluate:` section, `decode` the DecodeOptions fields."""
    from nmtkit.translate import resolve_checkpoint, translate_file

    paths, recipe = open_run(target)
    checkpoint = resolve_checkpoint(paths.root)
    src_lang, tgt_lang = recipe.data.src_lang, recipe.data.tgt_lang
    results = []
    for split in find_test_splits(paths):
        source = paths.data / "text" / f"{split}.{src_lang}"
        reference = paths.data / "text" / f"{split}.{tgt_lang}"
        hyp = paths.translations / f"{split}.{tgt_lang}"
        console.info(f"translating {split} ({source}) with {checkpoint}")
        translate_file(
            [checkpoint],
            input_path=source,
            output_path=hyp,
            device=device,
            show_progress=True,
            **decode,
        )
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
