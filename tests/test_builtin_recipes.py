"""The built-in recipes: `nmtkit recipes` lists the repository's recipes/ (the one copy), `show`
prints one as it is, every command that takes a recipe takes a name, and a path wins.

The installed wheel's side (recipes inside the package, outside a clone) is
tests/test_packaging.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nmtkit import builtin_recipes
from nmtkit.evaluate.run import open_run
from nmtkit.recipe import load_recipe
from nmtkit.translate import resolve_checkpoint
from tests.conftest import one_line, run_cli

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
NAMES = sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml"))
SMALL_DEMO = [  # the demo's corpus and vocabulary cut down to a few seconds of `prepare`
    "--set=data.source.synthetic.pairs=2000",
    "--set=data.source.synthetic.valid=100",
    "--set=data.source.synthetic.test=100",
    "--set=tokenizer.vocab_size=300",
]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory outside the clone."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_built_in_recipes_are_the_repository_files() -> None:
    found = builtin_recipes.builtin_recipes()
    assert sorted(found) == NAMES
    assert "length-study/bahdanau" in found
    for name, path in found.items():
        assert path.resolve() == (RECIPES / f"{name}.yaml").resolve()


def test_recipes_lists_each_with_one_line(elsewhere: Path) -> None:
    result = run_cli("recipes")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(builtin_recipes.builtin_recipes())
    for line, name in zip(lines, builtin_recipes.builtin_recipes(), strict=True):
        text = (RECIPES / f"{name}.yaml").read_text(encoding="utf-8")
        header = " ".join(line.lstrip("#").strip() for line in text.splitlines()[:4])
        summary = line.removeprefix(name).strip()
        # the summary is the header's first words (cut with " …" where it is long)
        assert len(summary) > 20 and header.startswith(summary.removesuffix(" …")), name


@pytest.mark.parametrize("name", ["demo", "length-study/bahdanau"])
def test_recipes_show_prints_the_file_verbatim(elsewhere: Path, name: str) -> None:
    result = run_cli("recipes", "show", name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (RECIPES / f"{name}.yaml").read_text(encoding="utf-8")


def test_a_shown_recipe_is_a_recipe_file_to_edit(elsewhere: Path) -> None:
    copy = elsewhere / "my.yaml"
    copy.write_text(run_cli("recipes", "show", "multi30k-cpu").stdout, encoding="utf-8")
    assert load_recipe(copy) == load_recipe("multi30k-cpu")


def test_recipes_show_an_unknown_name_lists_the_names(elsewhere: Path) -> None:
    result = run_cli("recipes", "show", "bahdanau")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "did you mean length-study/bahdanau?" in message
    assert all(name in message for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_built_in_name_loads_as_its_file(elsewhere: Path, name: str) -> None:
    assert load_recipe(name) == load_recipe(RECIPES / f"{name}.yaml")


def test_a_file_of_that_name_wins(elsewhere: Path) -> None:
    (elsewhere / "demo").write_text(yaml.safe_dump({"name": "mine"}), encoding="utf-8")
    assert load_recipe("demo").name == "mine"
    local = elsewhere / "recipes" / "demo.yaml"
    local.parent.mkdir()
    local.write_text(yaml.safe_dump({"name": "local"}), encoding="utf-8")
    assert load_recipe("recipes/demo.yaml").name == "local"


def test_an_unknown_name_is_one_paragraph_with_the_closest(elsewhere: Path) -> None:
    result = run_cli("prepare", "demoo")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert message.startswith("error: demoo is neither a recipe file nor a built-in recipe")
    assert "did you mean demo?" in message
    assert all(name in message for name in NAMES)
    assert "Traceback" not in result.stderr and result.stderr.count("error:") == 1


def test_a_missing_path_says_so_and_names_the_built_in(elsewhere: Path) -> None:
    result = run_cli("train", "recipes/multi30k-cpu.yaml")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "recipe recipes/multi30k-cpu.yaml does not exist" in message
    assert "built-in recipe `multi30k-cpu`" in message
    other = one_line(run_cli("train", "mine.yaml").stderr)
    assert other == "error: recipe mine.yaml does not exist"


def test_prepare_by_name_writes_the_run_under_the_current_directory(elsewhere: Path) -> None:
    result = run_cli("prepare", "demo", *SMALL_DEMO)
    assert result.exit_code == 0, result.stderr
    assert (elsewhere / "runs" / "demo" / "data" / "manifest.json").is_file()


def test_train_nproc_relaunches_with_the_name(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--nproc` starts `nmtkit train ARGS` again in the same directory: the name goes as it
    was given, so every rank resolves it as the first process did."""
    from nmtkit.train import distributed

    launched: list[list[str]] = []
    monkeypatch.setattr(distributed, "launch", lambda n, args, recipe: launched.append(args) or 0)
    result = run_cli("train", "demo", "--nproc", "2", "--set", "train.max_steps=3")
    assert result.exit_code == 0, result.stderr
    assert launched == [["demo", "--set=train.max_steps=3"]]


def test_evaluate_and_translate_take_a_name(elsewhere: Path) -> None:
    paths, recipe = open_run(Path("demo"))
    assert recipe.name == "demo" and paths.root == Path("runs/demo")
    best = elsewhere / "runs" / "demo" / "checkpoints" / "best.pt"
    best.parent.mkdir(parents=True)
    best.touch()
    assert resolve_checkpoint("demo").resolve() == best
    run_dir = elsewhere / "demo" / "checkpoints" / "best.pt"  # a run directory named demo wins
    run_dir.parent.mkdir(parents=True)
    run_dir.touch()
    assert resolve_checkpoint("demo").resolve() == run_dir
