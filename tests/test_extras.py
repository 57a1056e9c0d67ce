"""The lean core: with none of the extras installed (serve, plot, tensorboard), nmtkit prepares,
trains, translates and evaluates; the plots and event files that are only by-products are
skipped with a one-line note; `serve` and `evaluate --plot` end with one line naming the
`pip install "nmtkit[...]"` that fixes them (exit 2), before doing any work.

Each command runs in a fresh interpreter whose imports of the extras' packages fail as if they
were not installed (a meta-path finder raising ModuleNotFoundError for them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from nmtkit.extras import EXTRAS
from tests.conftest import TINY_MODEL, one_line, toy_run_recipe

BLOCKED = sorted({module for modules in EXTRAS.values() for module in modules})
WITHOUT_EXTRAS = f"""
import sys

class WithoutExtras:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtras())
sys.argv[0] = "nmtkit"
from nmtkit.cli import main
main()
"""
ROOT = Path(__file__).resolve().parent.parent


def nmtkit(*args: object, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    """`nmtkit ARGS` in a new interpreter without the extras."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *map(str, args)],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )


class LeanRun(NamedTuple):
    root: Path  # the recipe, the toy corpus (train/valid/test .en/.de) and run/
    train_stderr: str


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> LeanRun:
    """A tiny recipe prepared and trained for 4 steps without the extras."""
    root = tmp_path_factory.mktemp("lean")
    recipe = toy_run_recipe(
        root,
        {"train": (200, 0), "valid": (20, 1), "test": (20, 2)},
        max_words=8,
        tokenizer={"vocab_size": 48},
        model=TINY_MODEL,
        train={"max_steps": 4, "valid_every": 4, "batch_tokens": 400, "device": "cpu"},
    )
    for command in ("prepare", "train"):
        result = nmtkit(command, recipe, cwd=root)
        assert result.returncode == 0, result.stderr
    return LeanRun(root, result.stderr)


def test_the_extras_are_blocked_in_the_subprocess(tmp_path: Path) -> None:
    probe = WITHOUT_EXTRAS.replace(
        "from nmtkit.cli import main\nmain()", "import matplotlib  # must fail"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 1 and "No module named 'matplotlib'" in result.stderr


def test_help_without_extras(tmp_path: Path) -> None:
    result = nmtkit("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "recipes" in result.stdout


def test_training_without_extras_notes_what_it_skipped(lean: LeanRun) -> None:
    run = lean.root / "run"
    assert (run / "checkpoints" / "best.pt").is_file()
    assert (run / "logs" / "metrics.jsonl").read_text(encoding="utf-8")
    assert not (run / "reports" / "training.png").exists()
    assert not list((run / "tensorboard").glob("events.out.tfevents.*"))
    notes = [line for line in lean.train_stderr.splitlines() if "extra is not installed" in line]
    assert len(notes) == 2, lean.train_stderr
    assert any('pip install "nmtkit[tensorboard]"' in note for note in notes)
    assert any('pip install "nmtkit[plot]"' in note for note in notes)


def test_translate_without_extras(lean: LeanRun) -> None:
    lines = "the dog sees the cat\n\nthe old man\n"
    result = nmtkit("translate", "-m", lean.root / "run", "--beam", "2", input=lines, cwd=lean.root)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_evaluate_a_run_without_matplotlib_keeps_the_scores(lean: LeanRun) -> None:
    result = nmtkit("evaluate", lean.root / "run", "--device", "cpu", cwd=lean.root)
    assert result.returncode == 0, result.stderr
    reports = lean.root / "run" / "reports"
    report = json.loads((reports / "test.json").read_text(encoding="utf-8"))
    assert report["systems"] == ["tiny"] and report["sentences"] == 20
    assert not (reports / "test.png").exists()
    assert 'pip install "nmtkit[plot]"' in one_line(result.stderr)


def test_evaluate_plot_without_matplotlib_is_an_error_first(lean: LeanRun) -> None:
    test = lean.root / "test.de"
    plot, report = lean.root / "bleu.png", lean.root / "report.json"
    result = nmtkit(
        "evaluate", "--hyp", test, "--ref", test, "--plot", plot, "--json", report, cwd=lean.root
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: nmtkit evaluate --plot needs the "plot" extra: pip install "nmtkit[plot]"'
    ]
    assert not plot.exists() and not report.exists() and not result.stdout


def test_serve_without_its_extra_is_one_line(lean: LeanRun) -> None:
    result = nmtkit("serve", "-m", lean.root / "run", cwd=lean.root)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: nmtkit serve needs the "serve" extra: pip install "nmtkit[serve]"'
    ]
