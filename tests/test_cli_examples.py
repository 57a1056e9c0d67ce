"""Every `Examples:` line of every command's --help runs as written, on the tiny test model.

The examples are read from the Typer app itself (each command's help, nested groups included:
the code spans that are commands in an `Examples:` list or on an `Example:` line), so a new
example is a new test: it must be in `CASES` (how to run it here, and what shows it did what it
says) or in `SKIPPED` (why it cannot run here), or `test_every_example_is_handled` fails.

Each runnable example runs in its own folder laid out as the examples assume: the built-in name
`demo` and the file `my.yaml` stand for the tiny test recipe (run directories `runs/demo` and
`runs/my`), `runs/NAME` are copies of the session's trained run where a case asks for them, and
`test.en`, `test.de`, `out.de`, `a.de` and `b.de` are a few test sources, their references and
the tiny model's translations. A case may change a few words of the example for the tiny model
(`replace`: a smaller vocabulary) and add arguments (`extra`: `--set train.max_steps=...`, a beam
wide enough for the n-best), so that nothing takes long. `echo ... |`, `&&` and `> FILE` do
what a shell does with them.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer.main
import yaml
from typer.testing import Result

from nmtkit.cli import app
from tests.conftest import run_cli

if TYPE_CHECKING:
    from nmtkit.translate import Translator

REPO = Path(__file__).resolve().parents[1]
LINES = 8  # test sources in the example folder
TINY = {"demo": "recipes/demo.yaml"}  # a built-in recipe's name -> the folder's tiny recipe
RECIPE_COMMANDS = ("prepare", "train", "evaluate")  # the commands whose argument is a recipe


def help_examples() -> list[str]:
    """Every command line in the examples of the app's help texts, in order."""
    found: list[str] = []

    def walk(command: Any) -> None:  # a click command (typer may bring its own click)
        found.extend(examples_in(command.help or ""))
        for sub in getattr(command, "commands", {}).values():  # a group's commands
            walk(sub)

    walk(typer.main.get_command(app))
    return found


def examples_in(text: str) -> list[str]:
    """The code spans that are commands (`nmtkit ...`, `echo ... | nmtkit ...`) in the bullets
    that follow an `Examples:` line (a bullet's wrapped lines joined) and on `Example:` lines."""
    lines: list[str] = []
    in_list = False
    for line in text.splitlines():
        if line.startswith("Example: "):
            lines.append(line)
        elif line.strip() == "Examples:":
            in_list = True
        elif in_list and line.startswith("- "):
            lines.append(line)
        elif in_list and line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        elif in_list and line.strip():
            in_list = False  # the paragraph after the list
    spans = (" ".join(span.split()) for line in lines for span in re.findall(r"`([^`]+)`", line))
    return [span for span in spans if span.startswith("nmtkit ") or "| nmtkit " in span]


@dataclass
class Folder:
    """The folder an example runs in, and what it was given."""

    root: Path
    trained: Path  # the session's trained run

    def lines(self, name: str) -> list[str]:
        return (self.root / name).read_text(encoding="utf-8").splitlines()

    def checkpoint_step(self, path: str) -> int | None:
        from nmtkit.checkpoint import Checkpoint

        return Checkpoint.read(self.root / path).step


Check = Callable[[Folder, Result], None]


@dataclass(frozen=True)
class Case:
    """How one example runs here: the checks on its (last command's) result, the run
    directories copied from the trained run before it runs, words replaced and arguments added
    (to each command) for the tiny model, `setup`, anything else the folder needs first, and
    `built_in`: the recipe names are the real built-in recipes, not the tiny one."""

    check: Check
    runs: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    extra: tuple[str, ...] = ()
    setup: Callable[[Folder], None] | None = None
    built_in: bool = False


# ----------------------------------------------------------------------------- the checks


def prepared(run: str, vocab_size: int | None = None) -> Check:
    def check(folder: Folder, result: Result) -> None:
        manifest = json.loads((folder.root / run / "data" / "manifest.json").read_text())
        assert {"train", "valid", "test"} <= set(manifest["splits"])
        if vocab_size is not None:
            assert manifest["tokenizer"]["tgt_vocab_size"] == vocab_size

    return check


def trained_to(step: int, attention: str | None = None) -> Check:
    def check(folder: Folder, result: Result) -> None:
        assert folder.checkpoint_step("runs/demo/checkpoints/last.pt") == step
        if attention is not None:
            from nmtkit.checkpoint import Checkpoint

            recipe = Checkpoint.read(folder.root / "runs/demo/checkpoints/last.pt").recipe()
            assert recipe.model.attention == attention

    return check


def restarted(folder: Folder, result: Result) -> None:
    trained_to(4, "bahdanau")(folder, result)
    kept = {p.name for p in (folder.root / "runs/demo/checkpoints").glob("step-*.pt")}
    assert "step-0000120.pt" not in kept  # the old run's checkpoints are gone


def stopped_at_max_time(folder: Folder) -> None:
    """The demo situation: the copied run stopped at its max_time, and training again with a
    higher max_steps only does not move it."""
    from nmtkit.checkpoint import Checkpoint

    last = Checkpoint.read(folder.root / "runs/demo/checkpoints/last.pt")
    assert last.training is not None
    recipe = folder.root / "recipes" / "demo.yaml"
    content = yaml.safe_load(recipe.read_text())
    content["train"]["max_time"] = last.training.state.elapsed / 2
    recipe.write_text(yaml.safe_dump(content))
    again = run_cli("train", "recipes/demo.yaml", *STEPS)
    assert again.exit_code == 0, again.stderr
    assert folder.checkpoint_step("runs/demo/checkpoints/last.pt") == 120


def evaluated(*, averaged: bool = False) -> Check:
    def check(folder: Folder, result: Result) -> None:
        run = folder.root / "runs" / "demo"
        test_sources = (run / "data" / "text" / "test.en").read_text().splitlines()
        names = ["test.de", "test.avg.de"] if averaged else ["test.de"]
        for name in names:
            assert len((run / "translations" / name).read_text().splitlines()) == len(test_sources)
        report = json.loads((run / "reports" / "test.json").read_text())
        assert report["systems"] == (["tiny", "tiny.avg"] if averaged else ["tiny"])
        assert report["sentences"] == len(test_sources)
        assert (run / "reports" / "test.png").read_bytes().startswith(b"\x89PNG")
        assert (run / "reports" / "training.png").is_file()

    return check


def scored_files(by: str, plot: str | None = None) -> Check:
    def check(folder: Folder, result: Result) -> None:
        assert "BLEU" in result.stdout and "chrF" in result.stdout
        assert f"by {by} length" in " ".join(result.stdout.split())
        if plot is not None:
            assert (folder.root / plot).read_bytes().startswith(b"\x89PNG")

    return check


def compared(folder: Folder, result: Result) -> None:
    report = json.loads((folder.root / "report.json").read_text())
    assert report["systems"] == ["luong", "bahdanau"] and report["by"] == "source"
    assert report["edges"] == [10, 20, 30, 40, 50, 60]
    assert report["overall"]["bahdanau"]["bleu"]["p_value"] is not None


def translated_file(name: str) -> Check:
    def check(folder: Folder, result: Result) -> None:
        assert len(folder.lines(name)) == LINES
        assert not list(folder.root.glob(f"{name}*.partial"))

    return check


def one_line_per_source(folder: Folder, result: Result) -> None:
    assert len(result.stdout.splitlines()) == LINES


def one_line_out(folder: Folder, result: Result) -> None:
    assert len(result.stdout.splitlines()) == 1 and result.stdout.strip()


def nbest_tsv(folder: Folder, result: Result) -> None:
    lines = result.stdout.splitlines()
    assert len(lines) == LINES
    for line in lines:
        fields = line.split("\t")
        assert len(fields) == 2 * 5  # text, score for each of the 5 hypotheses
        scores = [float(score) for score in fields[1::2]]
        assert scores == sorted(scores, reverse=True)


def nbest_jsonl_attention(folder: Folder, result: Result) -> None:
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records] == list(range(1, LINES + 1))
    for record in records:
        assert len(record["nbest"]) == 5
        weights = record["attention"]["weights"]
        assert len(weights) == len(record["attention"]["target"])


def averaged(folder: Folder, result: Result) -> None:
    from nmtkit.checkpoint import Checkpoint

    checkpoints = folder.root / "runs/demo/checkpoints"
    steps = sorted(int(path.stem.removeprefix("step-")) for path in checkpoints.glob("step-*.pt"))
    averaged = Checkpoint.read(checkpoints / "avg.pt")
    assert len(steps) >= 2 and averaged.averaged_steps == steps and averaged.training is None
    # what the help says it is for: `nmtkit evaluate RUN_DIR` scores it beside best.pt
    evaluation = run_cli("evaluate", "runs/demo", "--device", "cpu")
    assert evaluation.exit_code == 0, evaluation.stderr
    evaluated(averaged=True)(folder, evaluation)


def scores_tsv(folder: Folder, result: Result) -> None:
    lines = result.stdout.splitlines()
    assert len(lines) == LINES
    for line in lines:
        log_prob, per_token, tokens = line.split("\t")
        assert float(log_prob) < 0 and float(per_token) < 0 and int(tokens) >= 1


def scores_jsonl_pieces(folder: Folder, result: Result) -> None:
    records = [json.loads(line) for line in folder.lines("scores.jsonl")]
    assert len(records) == LINES
    for record in records:
        assert len(record["pieces"]) == len(record["piece_log_probs"]) == record["tokens"]


def listed_recipes(folder: Folder, result: Result) -> None:
    from nmtkit.builtin_recipes import builtin_recipes

    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == list(builtin_recipes()) and {"demo", "multi30k-cpu"} <= set(names)


def shown(name: str) -> Check:
    def check(folder: Folder, result: Result) -> None:
        from nmtkit.recipe import load_recipe

        shown = (folder.root / "my.yaml").read_text(encoding="utf-8")
        assert shown == (REPO / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")
        assert load_recipe(folder.root / "my.yaml").name == name  # a recipe, as it is

    return check


def prepared_and_trained(folder: Folder, result: Result) -> None:
    prepared("runs/demo")(folder, result)
    trained_to(4)(folder, result)


# ----------------------------------------------------------------------------- the examples

STEPS = ("--set", "train.max_steps=124")  # 4 updates past the trained run's 120

CASES: dict[str, Case] = {
    "nmtkit prepare demo": Case(prepared("runs/demo")),
    # the real built-in demo, shrunk: synthetic pairs, whatever their number
    "nmtkit prepare demo --set data.source.synthetic.pairs=200000": Case(
        prepared("runs/synthetic", vocab_size=120),
        replace=(("pairs=200000", "pairs=300"),),
        extra=(
            *("--set", "run_dir=runs/synthetic", "--set", "data.source.synthetic.valid=20"),
            *("--set", "data.source.synthetic.test=20", "--set", "tokenizer.vocab_size=120"),
        ),
        built_in=True,
    ),
    "nmtkit prepare my.yaml --set tokenizer.vocab_size=16000 --force": Case(
        prepared("runs/my", vocab_size=40), replace=(("vocab_size=16000", "vocab_size=40"),)
    ),
    "nmtkit prepare my.yaml": Case(prepared("runs/my")),
    "nmtkit train demo": Case(trained_to(124), runs=("demo",), extra=STEPS),
    "nmtkit train demo --set train.max_time=16m": Case(
        trained_to(124), runs=("demo",), extra=STEPS, setup=stopped_at_max_time
    ),
    "nmtkit train demo --set model.attention=bahdanau --restart": Case(
        restarted, runs=("demo",), extra=("--set", "train.max_steps=4")
    ),
    "nmtkit evaluate runs/demo": Case(evaluated(), runs=("demo",), extra=("--device", "cpu")),
    "nmtkit evaluate demo": Case(evaluated(), runs=("demo",), extra=("--device", "cpu")),
    "nmtkit evaluate --hyp out.de --ref test.de": Case(scored_files("reference")),
    "nmtkit evaluate --hyp out.de --ref test.de --src test.en --plot bleu.png": Case(
        scored_files("source", plot="bleu.png")
    ),
    "nmtkit evaluate --hyp luong=a.de --compare bahdanau=b.de --ref test.de --src test.en "
    "--buckets 10,20,30,40,50,60 --json report.json": Case(compared),
    "nmtkit translate -m runs/demo -i test.en -o test.de": Case(
        translated_file("test.de"), runs=("demo",)
    ),
    'echo "The old man sees the dog." | nmtkit translate -m runs/demo --greedy': Case(
        one_line_out, runs=("demo",)
    ),
    # the tiny model's recipe searches with beam 3: 5 hypotheses need a beam of 5
    "nmtkit translate -m runs/demo -i test.en -f tsv --nbest 5": Case(
        nbest_tsv, runs=("demo",), extra=("--beam", "5")
    ),
    "nmtkit translate -m runs/demo -i test.en --format jsonl --nbest 5 --attention": Case(
        nbest_jsonl_attention, runs=("demo",), extra=("--beam", "5")
    ),
    "nmtkit translate -m runs/a -m runs/b -i test.en": Case(one_line_per_source, runs=("a", "b")),
    "nmtkit translate -m runs/demo -i test.en --no-shortlist": Case(
        one_line_per_source, runs=("demo",)
    ),
    "nmtkit average runs/demo/checkpoints/step-*.pt -o runs/demo/checkpoints/avg.pt": Case(
        averaged, runs=("demo",)
    ),
    "nmtkit score -m runs/demo --src test.en --tgt test.de": Case(scores_tsv, runs=("demo",)),
    "nmtkit score -m runs/demo --src test.en --tgt test.de -f jsonl --pieces -o scores.jsonl": (
        Case(scores_jsonl_pieces, runs=("demo",))
    ),
    "nmtkit recipes": Case(listed_recipes),
    "nmtkit prepare demo && nmtkit train demo": Case(
        prepared_and_trained, extra=("--set", "train.max_steps=4")
    ),
    "nmtkit recipes show demo > my.yaml": Case(shown("demo")),
    "nmtkit recipes show multi30k-cpu > my.yaml": Case(shown("multi30k-cpu")),
}

SKIPPED: dict[str, str] = {
    "nmtkit train demo --nproc 4": "needs 4 GPUs; --nproc on CPU processes is "
    "tested in tests/train/test_distributed.py",
    "nmtkit serve -m runs/demo": "serves until killed; the server is tested in tests/serve/",
    "nmtkit serve -m en-de=runs/demo -m runs/other --port 9000": "serves until killed; names, "
    "ports and keys are tested in tests/serve/",
}

EXAMPLES = help_examples()


def test_every_example_is_handled() -> None:
    """Each example of the help is run here or skipped with a reason, and each entry of the
    tables is still an example of the help."""
    assert EXAMPLES, "no Examples: lists found in the help"
    unhandled = [example for example in EXAMPLES if example not in CASES | SKIPPED]
    assert not unhandled, f"--help examples neither run nor skipped here: {unhandled}"
    stale = [example for example in CASES | SKIPPED if example not in EXAMPLES]
    assert not stale, f"no longer examples of --help: {stale}"
    assert len(set(EXAMPLES)) == len(EXAMPLES)


@pytest.fixture
def folder(
    tmp_path: Path,
    trained: Path,
    translator: Translator,
    sources: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Folder:
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    recipe = yaml.safe_load((trained / "recipe.yaml").read_text())
    for path, run_dir in (("recipes/demo.yaml", "runs/demo"), ("my.yaml", "runs/my")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(yaml.safe_dump({**recipe, "run_dir": run_dir}))
    test = sources[:LINES]
    references = (trained / "test.de").read_text().splitlines()[:LINES]
    beam = [t.texts[0] for t in translator.translate(test)]
    greedy = [
        t.texts[0] for t in translator.translate(test, translator.defaults.replace(greedy=True))
    ]
    for name, lines in {
        "test.en": test,
        "test.de": references,
        "out.de": beam,
        "a.de": beam,
        "b.de": greedy,
    }.items():
        (root / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Folder(root, trained / "run")


@dataclass(frozen=True)
class Step:
    """One command of an example: the arguments after `nmtkit`, its standard input (`echo
    "..." |`) and the file its standard output goes to (`> FILE`)."""

    args: list[str]
    stdin: str | None = None
    stdout: str | None = None


def command_lines(example: str, case: Case) -> list[Step]:
    """The example's commands (`A && B` is two), globs expanded as a shell would, the tiny
    recipe for a built-in name (unless `case.built_in`) and `case.extra` added to each."""
    for old, new in case.replace:
        assert old in example, f"{old!r} is no longer in {example!r}"
        example = example.replace(old, new)
    return [command_line(part, case) for part in example.split(" && ")]


def command_line(command: str, case: Case) -> Step:
    stdin = stdout = None
    if " | " in command:
        feed, command = command.split(" | ")
        words = shlex.split(feed)
        assert words[0] == "echo"
        stdin = " ".join(words[1:]) + "\n"
    if " > " in command:
        command, stdout = command.split(" > ")
    words = shlex.split(command)
    assert words[0] == "nmtkit"
    args = []
    for word in words[1:]:
        if "*" in word:
            matches = sorted(glob.glob(word))
            assert matches, f"{word} matches nothing"
            args.extend(matches)
        else:
            args.append(word)
    if args[0] in RECIPE_COMMANDS and len(args) > 1 and not case.built_in:
        args[1] = TINY.get(args[1], args[1])
    return Step([*args, *case.extra], stdin, None if stdout is None else stdout.strip())


@pytest.mark.parametrize("example", EXAMPLES)
def test_example(example: str, request: pytest.FixtureRequest) -> None:
    if example in SKIPPED:
        pytest.skip(f"`{example}`: {SKIPPED[example]}")
    assert example in CASES, f"{example!r} is neither run nor skipped (see CASES, SKIPPED)"
    case = CASES[example]
    folder: Folder = request.getfixturevalue("folder")
    for name in case.runs:
        shutil.copytree(folder.trained, folder.root / "runs" / name)
    if case.setup is not None:
        case.setup(folder)
    for step in command_lines(example, case):
        result = run_cli(*step.args, input=step.stdin)
        where = f"nmtkit {shlex.join(step.args)}\n{result.stdout}\n{result.stderr}"
        assert result.exit_code == 0, where
        if step.stdout is not None:
            (folder.root / step.stdout).write_text(result.stdout, encoding="utf-8")
    case.check(folder, result)
