"""The user documentation stays true: README.md and docs/*.md say what nmtkit does.

- docs/recipes.md's table of every recipe key is what `scripts/recipe_reference.py` writes
  from the schema (`nmtkit.recipe.Recipe`);
- every relative link of README.md, docs/*.md and docs/dev/*.md reaches a file, and its
  `#anchor` a heading of that page (GitHub's slugs);
- README.md is short and opens with `make demo` and `make test`; no user page speaks of
  tracker issues or sessions, or names a path under /tmp/ or .gpu/;
- the examples run as written: every command of a ```bash block and every ```python block of
  the pages in `EXAMPLE_PAGES`, in page order, each page in a folder of its own laid out as the
  pages assume, on the session's tiny trained model (conftest's `trained`).

The folder of a page holds `runs/demo`, a copy of the trained run, and a file `demo`, the tiny
recipe under the demo's name (a file wins over the built-in name, so `nmtkit train demo` as
written trains the tiny model in runs/demo), and `corpora/multi30k/`, toy text files named as
the Multi30k ones. `nmtkit` commands run in this process (conftest's `run_cli`); `echo "..." |`
feeds stdin, `> FILE` writes stdout to FILE, `A && B` is two commands, globs expand as in a
shell. Each must exit 0 and say something: its output file when it names one (`-o`, `>`),
else its standard output (standard error for the commands that report there). The Python
blocks of a page run one after the other in one namespace, and each must print something.

Every `nmtkit` command runs unless `SKIPPED` says why not; `TINY` adds arguments to (or changes
words of) a command so that it stays small on the tiny model. Any other command (`make`, `pip`,
`curl`) must be in `SKIPPED`. So a new example is run, or fails `test_every_example_is_handled`
until it is skipped with a reason; and an entry of `SKIPPED` or `TINY` that is no longer an
example fails the same test.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import io
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
USER_PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
ALL_PAGES = [*USER_PAGES, *sorted((ROOT / "docs" / "dev").glob("*.md"))]
EXAMPLE_PAGES = (
    "README.md",
    "docs/recipes.md",
    "docs/training.md",
    "docs/translating.md",
    "docs/serving.md",
    "docs/evaluating.md",
    "docs/python.md",
)
README_MAX_LINES = 220


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ----------------------------------------------------------------------------- the recipe keys


def recipe_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "recipe_reference", ROOT / "scripts" / "recipe_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_recipe_key_reference_is_the_schema() -> None:
    """`python scripts/recipe_reference.py --check` passes: the block of docs/recipes.md is
    what the script writes from `nmtkit.recipe.Recipe` now."""
    script = recipe_reference()
    assert script.main(["--check"]) == 0, (
        "docs/recipes.md's key reference differs from the schema: run "
        "`python scripts/recipe_reference.py`"
    )


# ----------------------------------------------------------------------------- markdown


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its lines (the fence's indentation removed) and the
    page line of its first line."""

    lang: str
    lines: list[str]
    line: int


FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)\s*$")


def parse(text: str) -> tuple[list[Block], str]:
    """The fenced code blocks of a page, and the page without them (each block's lines made
    empty, so that line numbers and headings outside the blocks stay where they were)."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            prose.append(lines[i])
            i += 1
            continue
        indent, ticks, lang = fence.groups()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != ticks:
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append(Block(lang, body, i + 2))
        prose.extend([""] * (j + 1 - i))
        i = j + 1
    return blocks, "\n".join(prose)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (no code marks, emphasis or link
    targets) lowercased, punctuation but `-` and `_` dropped, each space a `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (outside code blocks); a repeated heading gets `-1`,
    `-2`, ... as on GitHub."""
    _, prose = parse(page.read_text(encoding="utf-8"))
    found: set[str] = set()
    for line in prose.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image of the page outside code blocks and spans."""
    _, prose = parse(page.read_text(encoding="utf-8"))
    prose = re.sub(r"`[^`\n]*`", lambda span: " " * len(span.group()), prose)
    return [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(prose)]


def test_the_slugs_are_githubs() -> None:
    assert slug("Quality on real text: Multi30k") == "quality-on-real-text-multi30k"
    assert slug("Several processes (DDP)") == "several-processes-ddp"
    assert slug("`decode`") == "decode"
    assert slug("`data.source.files.train` (also `valid`, `test`)") == (
        "datasourcefilestrain-also-valid-test"
    )
    assert slug("Bad requests to `nmtkit serve`") == "bad-requests-to-nmtkit-serve"
    assert "model" in anchors(ROOT / "docs" / "recipes.md")  # a generated `model` heading


@pytest.mark.parametrize("page", ALL_PAGES, ids=rel)
def test_relative_links_reach_a_file_and_a_heading(page: Path) -> None:
    broken = []
    for line, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        where = f"{rel(page)}:{line}: {target}"
        if not dest.exists():
            broken.append(f"{where}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{where}: no heading with the anchor #{anchor} in {rel(dest)}")
        elif anchor and dest.suffix != ".md":
            broken.append(f"{where}: an anchor into a file that is not a page")
    assert not broken, "\n".join(broken)


def test_readme_is_short_and_starts_with_make_demo_and_make_test() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    blocks, prose = parse(text)
    first = blocks[0]
    before = [line for line in prose.splitlines()[: first.line - 2] if line.strip()]
    assert before == ["# nmtkit"], "README: the title, then the make demo / make test block"
    commands = [line.split("#")[0].split() for line in first.lines if line.strip()]
    assert commands[:2] == [["make", "demo"], ["make", "test"]], first.lines


FORBIDDEN = {
    "the word issue(s)": re.compile(r"\bissues?\b", re.IGNORECASE),
    "the word session(s)": re.compile(r"\bsessions?\b", re.IGNORECASE),
    "a path under /tmp/": re.compile(r"(?<![\w.])/tmp/"),
    "a path under .gpu/": re.compile(r"(?<![\w])\.gpu/"),
}


@pytest.mark.parametrize("page", USER_PAGES, ids=rel)
def test_user_pages_speak_to_users(page: Path) -> None:
    """No tracker issues, no sessions and no scratch paths of the people who wrote the page."""
    found = [
        f"{rel(page)}:{number}: {what}: {line.strip()}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        for what, pattern in FORBIDDEN.items()
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


# ----------------------------------------------------------------------------- the examples


@dataclass(frozen=True)
class Example:
    """One example of a page: a shell command (`text`: continuation lines joined, the
    comment dropped, spaces normalised) or a whole Python block."""

    page: str
    kind: str  # "bash" or "python"
    text: str
    line: int

    def matches(self, key: str) -> bool:
        """A shell command is named by its text; a Python block by one of its lines."""
        if self.kind == "bash":
            return self.text == key
        return key in (line.strip() for line in self.text.splitlines())

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def strip_comment(line: str) -> str:
    """The line without a `# comment` (a `#` outside quotes, at the start or after a space)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def page_examples(page: str) -> list[Example]:
    blocks, _ = parse((ROOT / page).read_text(encoding="utf-8"))
    found: list[Example] = []
    for block in blocks:
        if block.lang == "python":
            found.append(Example(page, "python", "\n".join(block.lines) + "\n", block.line))
        elif block.lang == "bash":
            command, start = "", 0
            for offset, line in enumerate(block.lines):
                code = strip_comment(line).rstrip()
                if not command:
                    start = block.line + offset
                if code.endswith("\\"):
                    command += code[:-1] + " "
                    continue
                command = " ".join((command + code).split())
                if command:
                    found.append(Example(page, "bash", command, start))
                command = ""
    return found


EXAMPLES = [example for page in EXAMPLE_PAGES for example in page_examples(page)]


@dataclass(frozen=True)
class Tiny:
    """How a command runs small: words replaced (`replace`, each must be in the command) and
    arguments added (`extra`) to each `nmtkit` command of it."""

    extra: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()


MAX_STEPS = ("--set", "train.max_steps=124")  # 4 updates past the trained run's 120
TOY_VOCAB = ("--set", "tokenizer.vocab_size=48")  # the toy corpus has 14 words per language
SMALL_SPLITS = ("--set", "data.source.synthetic.valid=20", "--set", "data.source.synthetic.test=20")
SMALL_SYNTHETIC = ("--set", "data.source.synthetic.pairs=300", *SMALL_SPLITS)  # a few hundred
TINY_MULTI30K = (  # the multi30k-cpu recipe at the tiny model's size, two updates
    *TOY_VOCAB,
    *("--set", "model.embed_size=32", "--set", "model.hidden_size=32"),
    *("--set", "train.max_steps=2", "--set", "train.valid_every=1"),
)
DE_EN = "--set name=multi30k-cpu-de-en --set data.src_lang=de --set data.tgt_lang=en"
FILES = "--set data.source.files=corpora/multi30k"

# (page, command) -> its tiny form
TINY: dict[tuple[str, str], Tiny] = {
    ("README.md", "nmtkit train demo"): Tiny(MAX_STEPS),
    ("README.md", "nmtkit prepare my-demo.yaml --set tokenizer.vocab_size=4000"): Tiny(
        SMALL_SYNTHETIC, replace=(("vocab_size=4000", "vocab_size=120"),)
    ),
    ("README.md", f"nmtkit prepare multi30k-cpu {FILES}"): Tiny(TOY_VOCAB),
    ("README.md", f"nmtkit train multi30k-cpu {FILES}"): Tiny(TINY_MULTI30K),
    ("README.md", f"nmtkit prepare multi30k-cpu {FILES} {DE_EN}"): Tiny(TOY_VOCAB),
    ("README.md", f"nmtkit train multi30k-cpu {FILES} {DE_EN}"): Tiny(TINY_MULTI30K),
    ("docs/recipes.md", "nmtkit prepare my-demo.yaml"): Tiny(
        (*SMALL_SYNTHETIC, "--set", "tokenizer.vocab_size=120")
    ),
    (
        "docs/recipes.md",
        "nmtkit prepare demo --set tokenizer.vocab_size=4000 "
        "--set data.source.synthetic.pairs=20000",
    ): Tiny(
        SMALL_SPLITS,
        replace=(("vocab_size=4000", "vocab_size=120"), ("pairs=20000", "pairs=300")),
    ),
    ("docs/training.md", "nmtkit train demo"): Tiny(MAX_STEPS),
    # two validated checkpoints, for `nmtkit average` after it
    ("docs/training.md", "nmtkit train demo --set model.attention=bahdanau --restart"): Tiny(
        ("--set", "train.max_steps=4", "--set", "train.valid_every=2")
    ),
    (
        "docs/translating.md",
        "nmtkit train demo --set name=demo-seed2 --set train.seed=2 --set data_dir=runs/demo/data",
    ): Tiny(("--set", "train.max_steps=4")),
}

SERVE = "serves until killed; the server is tested in tests/serve/test_app.py"
NEEDS_SERVER = "needs `nmtkit serve` running on port 8080; tests/serve/test_app.py sends "
INSTALL = "installs packages (from the network); tests/test_packaging.py installs the wheel"

# (page, command, or a line of a Python block) -> why it does not run here
SKIPPED: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): "the whole pipeline on the 60,000-pair corpus, about 10 minutes",
    ("README.md", "make test"): "the test suite itself (about 5 minutes)",
    ("README.md", "pip install ."): INSTALL,
    ("README.md", 'pip install ".[serve]"'): INSTALL,
    ("README.md", 'pip install ".[all]"'): INSTALL,
    ("README.md", "pip install torch --index-url https://download.pytorch.org/whl/cpu"): INSTALL,
    (
        "README.md",
        "python3 -m venv .venv && .venv/bin/pip install torch "
        "--index-url https://download.pytorch.org/whl/cpu",
    ): INSTALL,
    ("README.md", "make install"): INSTALL,
    ("README.md", "nmtkit serve -m runs/demo"): SERVE,
    (
        "README.md",
        "curl -s 127.0.0.1:8080/v1/translate -H 'content-type: application/json' -d "
        """'{"text": ["The old man sees the dog."], "beam": 5, "nbest": 2}'""",
    ): NEEDS_SERVER + "such requests",
    ("README.md", "nmtkit prepare multi30k-cpu"): "needs the Hugging Face hub "
    "(bentrevett/multi30k); the local-files form below runs",
    ("README.md", "nmtkit train multi30k-cpu"): "trains 30 minutes on the hub corpus; the "
    "local-files form below runs",
    ("README.md", "nmtkit evaluate multi30k-cpu"): "needs the 30-minute hub run; the local "
    "files' de-en run is evaluated below",
    ("README.md", "make test-all"): "the slow tests and the browser: tens of minutes",
    ("README.md", "make check"): "ruff and mypy over the whole repository, a tool run, not a test",
    ("README.md", "make bench"): "the quick benchmarks: over an hour",
    ("docs/training.md", "nmtkit train demo --nproc 8"): "needs 8 GPUs; --nproc with CPU "
    "processes is tested in tests/train/test_distributed.py",
    (
        "docs/training.md",
        "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint "
        "node1.example.org:29500 --rdzv-id demo-run -m nmtkit train demo",
    ): "needs two machines of 8 GPUs; torchrun's environment is tested in "
    "tests/train/test_distributed.py",
    ("docs/serving.md", 'pip install "nmtkit[serve]"'): INSTALL,
    ("docs/serving.md", "nmtkit serve -m runs/demo"): SERVE,
    ("docs/serving.md", "export NMTKIT_API_KEY=..."): "a placeholder key; the key from the "
    "environment is tested in tests/serve/test_robust.py",
    (
        "docs/serving.md",
        "nmtkit serve -m en-de=runs/demo -m de-en=runs/demo-de-en --port 9000",
    ): SERVE + " (names and keys too)",
    (
        "docs/serving.md",
        "curl -s 127.0.0.1:8080/v1/translate -H 'content-type: application/json' -d "
        """'{"text": ["The old man sees the dog.", "The dog runs."], "beam": 5, "nbest": 2}'""",
    ): NEEDS_SERVER + "such requests",
    ("docs/serving.md", "import httpx"): NEEDS_SERVER + "these requests and reads these fields",
}

# the commands that report on standard error (what they wrote, what they did)
REPORT_ON_STDERR = ("prepare", "train", "average")


def handled(example: Example) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The keys of SKIPPED and of TINY that name the example."""
    key = [name for name in SKIPPED if name[0] == example.page and example.matches(name[1])]
    tiny = [name for name in TINY if name[0] == example.page and example.matches(name[1])]
    return key, tiny


def runnable(example: Example) -> bool:
    """Whether the example can run here: a Python block, or `nmtkit` commands other than
    `serve` (with `echo ... |`, `> FILE` and `&&`)."""
    if example.kind == "python":
        return True
    for part in example.text.split(" && "):
        words = shlex.split(part.split(" | ")[-1])
        if words[:1] != ["nmtkit"] or words[1:2] == ["serve"]:
            return False
    return True


def test_every_example_is_handled() -> None:
    """Each example runs or is skipped with a reason; each entry of the tables still names an
    example (one, or one command written more than once on its page)."""
    assert len(EXAMPLES) > 50, "the pages have fewer examples than they had: is parse() broken?"
    problems = []
    for example in EXAMPLES:
        skipped, tiny = handled(example)
        if skipped and tiny:
            problems.append(f"{example.where}: both skipped and made tiny: {example.text}")
        elif not skipped and not runnable(example):
            problems.append(f"{example.where}: neither run nor skipped (SKIPPED): {example.text}")
    for table, entries in (("SKIPPED", list(SKIPPED)), ("TINY", list(TINY))):
        for page, key in entries:
            named = {e.text for e in EXAMPLES if e.page == page and e.matches(key)}
            if len(named) != 1:
                problems.append(f"{table} entry ({page!r}, {key!r}) names {len(named)} examples")
    assert not problems, "\n".join(problems)


@dataclass(frozen=True)
class Step:
    """One command: the arguments after `nmtkit`, its stdin (`echo "..." |`) and the file its
    stdout goes to (`> FILE`)."""

    args: list[str]
    stdin: str | None
    stdout: str | None


def steps(command: str, tiny: Tiny) -> list[Step]:
    for old, new in tiny.replace:
        assert old in command, f"{old!r} is no longer in {command!r}"
        command = command.replace(old, new)
    found = []
    for part in command.split(" && "):
        stdin = stdout = None
        if " | " in part:
            feed, part = part.split(" | ")
            words = shlex.split(feed)
            assert words[0] == "echo", feed
            stdin = " ".join(words[1:]) + "\n"
        if " > " in part:
            part, stdout = (side.strip() for side in part.split(" > "))
        words = shlex.split(part)
        args = []
        for word in words[1:]:
            matches = sorted(glob.glob(word)) if "*" in word else [word]
            assert matches, f"{word} matches nothing"
            args.extend(matches)
        found.append(Step([*args, *tiny.extra], stdin, stdout))
    return found


def output_file(args: list[str]) -> str | None:
    for flag in ("-o", "--output", "--json", "--plot"):
        if flag in args:
            return args[args.index(flag) + 1]
    return None


def run_command(example: Example, folder: Path) -> None:
    _, tiny = handled(example)
    for step in steps(example.text, TINY[tiny[0]] if tiny else Tiny()):
        result = run_cli(*step.args, input=step.stdin)
        where = (
            f"{example.where}: `{example.text}` ran as `nmtkit {shlex.join(step.args)}`\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        assert result.exit_code == 0, where
        if step.stdout is not None:
            (folder / step.stdout).write_text(result.stdout, encoding="utf-8")
        written = step.stdout or output_file(step.args)
        if written is not None:
            assert (folder / written).stat().st_size > 0, f"{written} is empty: {where}"
        elif step.args[0] in REPORT_ON_STDERR:
            assert result.stderr.strip(), f"nothing on stderr: {where}"
        else:  # (the tiny model's translation may be empty: its line is there)
            assert result.stdout, f"nothing on stdout: {where}"
        if step.args[0] == "translate" and "-i" in step.args:
            source = folder / step.args[step.args.index("-i") + 1]
            text = (folder / written).read_text(encoding="utf-8") if written else result.stdout
            lines = len(source.read_text(encoding="utf-8").splitlines())
            assert len(text.splitlines()) == lines, f"not one line per source line: {where}"


def run_python(example: Example, namespace: dict[str, object]) -> None:
    out = io.StringIO()
    code = compile(example.text, example.where, "exec")
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    assert out.getvalue().strip(), f"{example.where}: the Python block printed nothing"


@pytest.fixture
def folder(tmp_path: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out as the pages assume (see the module's docstring), the current one."""
    root = tmp_path / "work"
    shutil.copytree(trained / "run", root / "runs" / "demo")
    recipe = yaml.safe_load((trained / "recipe.yaml").read_text(encoding="utf-8"))
    recipe.pop("run_dir")  # runs/demo, after its name, as the built-in demo's
    (root / "demo").write_text(yaml.safe_dump({**recipe, "name": "demo"}), encoding="utf-8")
    corpus = root / "corpora" / "multi30k"
    corpus.mkdir(parents=True)
    for split, name in (("train", "train"), ("valid", "valid"), ("test", "test2016")):
        for lang in ("en", "de"):
            shutil.copy(trained / f"{split}.{lang}", corpus / f"{name}.{lang}")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("page", EXAMPLE_PAGES)
def test_the_examples_of_a_page_run_as_written(page: str, folder: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    for example in (e for e in EXAMPLES if e.page == page):
        skipped, _ = handled(example)
        if skipped or not runnable(example):  # test_every_example_is_handled tells which
            continue
        if example.kind == "python":
            run_python(example, namespace)
        else:
            run_command(example, folder)


def test_the_python_blocks_are_python() -> None:
    """Every Python block of every user page compiles, the ones that do not run here too."""
    for page in USER_PAGES:
        for block in parse(page.read_text(encoding="utf-8"))[0]:
            if block.lang == "python":
                compile("\n".join(block.lines), f"{rel(page)}:{block.line}", "exec")


if __name__ == "__main__":  # a quick listing of what runs and what does not
    for example in EXAMPLES:
        skipped, _ = handled(example)
        state = "skip" if skipped else "run " if runnable(example) else "????"
        print(state, example.where, example.text.splitlines()[0], file=sys.stdout)
