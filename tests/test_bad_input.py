"""Bad input through the command line, as one matrix: every door gives the same kind of answer.

A mistake in the input ends with exit code 2; stderr ends with one line that starts with
`error:` and names the file and, where there is one, the dotted key or the line number; there
is no traceback; and nothing is left that a later run would trust (no data/manifest.json after
a failed prepare, no output under its final name after a failed translate, no new checkpoint
after a failed train, no JSON or plot after a failed evaluate). Input that is odd but valid
(CRLF line ends, 100k-character lines, whitespace-only lines, a stdin that ends mid-line, a
reader that goes away) succeeds. The tests beside each module check the wording in depth.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import Result

from nmtkit.checkpoint import Checkpoint
from tests.conftest import one_line, run_cli, toy_pairs, toy_run_recipe, write_lines
from tests.train.test_train import copy_run

REPO = Path(__file__).resolve().parents[1]


def assert_clean_failure(result: Result, *needles: str) -> str:
    """Exit code 2; stderr ends with a single line starting with `error:` that holds every
    needle (progress lines of the work done before may precede it); no traceback anywhere.
    Returns the message."""
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
    lines = result.stderr.rstrip("\n").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert starts == [len(lines) - 1], result.stderr  # one paragraph of one line, the last
    message = one_line(lines[-1])
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def fill(text: str, paths: dict[str, Path]) -> str:
    """`<name>` placeholders in test tables -> the paths the test wrote."""
    for name, path in paths.items():
        text = text.replace(f"<{name}>", str(path))
    return text


# ------------------------------------------------------------------------------------ recipes

UNKNOWN_KEYS = [  # a misspelt key at every level of the schema, and the key it should be
    ("run_dri", "run_dir"),
    ("data.src_lnag", "src_lang"),
    ("data.source.flies", "files"),
    ("data.source.synthetic.sed", "seed"),
    ("data.source.files.vaild", "valid"),
    ("data.source.files.train.trg", "tgt"),
    ("data.source.tsv.tset", "test"),
    ("data.source.jsonl.src_keys", "src_key"),
    ("data.source.hf.revison", "revision"),
    ("data.source.hf.splits.vaid", "valid"),
    ("data.clean.max_lne", "max_len"),
    ("tokenizer.vocab", "vocab_size"),
    ("model.hidden", "hidden_size"),
    ("train.max_step", "max_steps"),
    ("train.early_stopping.patince", "patience"),
    ("decode.beam", "beam_size"),
    ("evaluate.bucket", "buckets"),
    ("model.colour", None),  # nothing close: the known keys only
]

MISTAKES = [  # recipe text after a first line `name: d`, and what the message says
    # wrong types
    ("model: {hidden_size: [1, 2]}", "line 2: model.hidden_size: Input should be a valid integer"),
    ("model: {bidirectional: maybe}", "model.bidirectional: Input should be a valid boolean"),
    ("model: 5", "line 2: model: Input should be a valid dictionary"),
    ("data: {clean: {splits: [trian]}}", "data.clean.splits.0: Input should be 'train', 'valid'"),
    ("train: {max_time: soon}", "train.max_time: expected a duration such as 90"),
    ("model: {3: 1}", "model.3: Keys should be strings"),
    # out of range
    ("model: {dropout: 1.5}", "model.dropout: Input should be less than 1 (got 1.5)"),
    ("tokenizer: {vocab_size: 3}", "tokenizer.vocab_size: Input should be greater than or equal"),
    ("train: {lr: .inf}", "line 2: train.lr: Input should be a finite number"),
    ("decode: {alpha: .nan}", "line 2: decode.alpha: Input should be a finite number"),
    ("decode: {beam_size: 0}", "decode.beam_size: Input should be greater than or equal to 1"),
    ("train: {early_stopping: {patience: 0}}", "train.early_stopping.patience: Input should be"),
    ("evaluate: {buckets: [10, 5]}", "evaluate.buckets: bucket edges must be strictly increasing"),
    # options that contradict each other
    ("tokenizer: {joint: false}\nmodel: {share_embeddings: true}", "share_embeddings needs one"),
    ("model: {attention: multihead, attention_heads: 5}", "attention_heads (5) must divide"),
    ("model: {hidden_size: 33}", "line 2: model: hidden_size (33) must be even"),
    ("data: {source: {synthetic: {}, tsv: {train: a}}}", "data.source: give exactly one source"),
    ("data: {src_lang: en, tgt_lang: en}", "data: src_lang and tgt_lang are both 'en'"),
    ("data: {clean: {min_len: 9, max_len: 3}}", "data.clean: min_len (9) is larger than max_len"),
    # YAML syntax: line and column
    ("model:\n\thidden_size: 3", "invalid YAML at line 3, column 1"),
    ("train: {lr: 1", "invalid YAML at line 3"),
    ("model:\n  cell: gru\n embed_size: 8", "invalid YAML at line 4, column 2"),
    ("model: !!python/object:os.system x", "invalid YAML at line 2"),
]

NOT_RECIPES = [  # whole files
    ("", "is empty; a recipe needs at least a `name:`"),
    ("# nothing here\n\n", "is empty"),
    ("- name: d\n", "the top level must be a mapping of sections, not a list"),
    ("name: null\n", "line 1: name: Input should be a valid string (got None)"),
]


def nested(dotted: str) -> str:
    """`a.b.c` as block YAML, one key per line, the last one set to 1."""
    parts = dotted.split(".")
    return "\n".join(f"{'  ' * depth}{part}:" for depth, part in enumerate(parts)) + " 1\n"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tmp_path: a recipe without run_dir that got through would write runs/ here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fails_cleanly(root: Path, command: str, text: str | bytes, *args: str) -> str:
    """Run COMMAND on a recipe file holding `text`; it must fail cleanly, naming the file,
    and leave nothing but the recipe behind. Returns the message."""
    path = root / "r.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    message = assert_clean_failure(run_cli(command, path, *args), str(path))
    assert list(root.iterdir()) == [path]  # no run directory, data or checkpoint
    return message


COMMANDS = pytest.mark.parametrize("command", ["prepare", "train"])


@COMMANDS
@pytest.mark.parametrize(("dotted", "meant"), UNKNOWN_KEYS)
def test_unknown_key_at_every_level(in_tmp: Path, command: str, dotted: str, meant: str) -> None:
    message = fails_cleanly(in_tmp, command, "name: d\n" + nested(dotted))
    line = len(dotted.split(".")) + 1
    hint = f"; did you mean `{meant}`?" if meant else ". Known keys here: cell, embed_size"
    assert f"line {line}: {dotted}: unknown key{hint}" in message


@COMMANDS
@pytest.mark.parametrize(("text", "needle"), MISTAKES)
def test_bad_value(in_tmp: Path, command: str, text: str, needle: str) -> None:
    assert needle in fails_cleanly(in_tmp, command, f"name: d\n{text}\n")


@COMMANDS
@pytest.mark.parametrize(("text", "needle"), NOT_RECIPES)
def test_not_a_recipe(in_tmp: Path, command: str, text: str, needle: str) -> None:
    assert needle in fails_cleanly(in_tmp, command, text)


@COMMANDS
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            "--set model.hiden_size=8",
            "--set model.hiden_size: unknown key; did you mean `hidden_size`?",
        ),
        ("--set nope=3", "--set nope: unknown key. Known keys here: name, run_dir"),
        ("--set train.early_stopping.patince=2", "--set train.early_stopping.patince: unknown"),
        ("--set train.early_stopping.x.y=1", "--set train.early_stopping.x: unknown key"),
        ("--set 'model={hiden_size: 8}'", "--set model.hiden_size: unknown key; did you mean"),
        ("--set decode.beam_size=0", "--set decode.beam_size: Input should be greater than or"),
        ("--set model.attention=multihead --set model.attention_heads=3", "heads (3) must divide"),
    ],
)
def test_bad_override(in_tmp: Path, command: str, args: str, needle: str) -> None:
    assert needle in fails_cleanly(in_tmp, command, "name: d\n", *shlex.split(args))


@COMMANDS
@pytest.mark.parametrize(
    ("override", "needle"),
    [("novalue", "--set 'novalue': expected KEY.PATH=VALUE"), ("name.x=1", "name is a string")],
)
def test_malformed_override(in_tmp: Path, command: str, override: str, needle: str) -> None:
    """The only recipe errors that do not name the file: the mistake is on the command line."""
    path = in_tmp / "r.yaml"
    path.write_text("name: d\n", encoding="utf-8")
    assert_clean_failure(run_cli(command, path, "--set", override), needle)
    assert list(in_tmp.iterdir()) == [path]


@COMMANDS
@pytest.mark.parametrize("kind", ["directory", "missing", "latin-1"])
def test_unreadable_recipe(in_tmp: Path, command: str, kind: str) -> None:
    path = in_tmp / "r.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "latin-1":
        path.write_bytes("name: d\n# grün\n".encode("latin-1"))
    needle = {"directory": "is a directory", "missing": "does not exist"}.get(kind, "not UTF-8")
    assert_clean_failure(run_cli(command, path), f"recipe {path} ", needle)
    assert list(in_tmp.iterdir()) == ([] if kind == "missing" else [path])


# ------------------------------------------------------------------------------------ corpora

SUFFIX = {"tsv": "tsv", "jsonl": "jsonl"}


def write_corpus(root: Path, kind: str, contents: dict[str, bytes | None]) -> tuple[dict, dict]:
    """Files named `train.en`/`train.de` (files) or `train.tsv`/`train.jsonl`, with the given
    bytes (None: not written); returns the recipe's `data.source` and the paths by name."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {name: root / name for name in contents}
    for name, data in contents.items():
        if data is not None:
            paths[name].write_bytes(data)
    splits = sorted({name.split(".")[0] for name in contents})
    if kind == "files":
        files = {s: {"src": str(root / f"{s}.en"), "tgt": str(root / f"{s}.de")} for s in splits}
        return {"files": files}, paths
    return {kind: {s: str(root / f"{s}.{SUFFIX[kind]}") for s in splits}}, paths


def no_prepared_data(run: Path) -> bool:
    return not (run / "data").exists() and not (run / "data.partial").exists()


def corpus(kind: str, contents: dict[str, bytes | None], *needles: str, **clean: int) -> object:
    """A test case: the corpus files of a source `kind`, data.clean settings, and what the
    message says (`<train.en>` stands for that file's path)."""
    return pytest.param(kind, contents, clean, needles, id=f"{kind}: {needles[0][:40]}")


AB, XY, TSV, JSONL = b"a b\n", b"x y\n", b"a b\tx y\n", b'{"en": "a b", "de": "x y"}\n'

CORPORA = [
    # parallel files that do not align: both files and both counts
    corpus(
        "files",
        {"train.en": AB * 7, "train.de": XY * 4},
        "<train.en> has 7 lines, <train.de> has 4",
    ),
    corpus(
        "files",
        {"train.en": AB * 5, "train.de": XY * 8},
        "<train.en> has 5 lines, <train.de> has 8",
    ),
    corpus(
        "files",
        {"train.en": AB, "train.de": XY, "valid.en": AB * 5, "valid.de": XY},
        "<valid.en> has 5 lines, <valid.de> has 1",
    ),
    # invalid UTF-8 and NUL bytes: file and line, in each file format
    corpus(
        "files",
        {"train.en": AB * 5, "train.de": XY * 3 + b"gr\xfcn\n" + XY},
        "<train.de>, line 4: invalid UTF-8",
    ),
    corpus("tsv", {"train.tsv": TSV + b"gr\xfcn\tgreen\n"}, "<train.tsv>, line 2: invalid UTF-8"),
    corpus(
        "jsonl",
        {"train.jsonl": JSONL + b'{"en": "gr\xfcn", "de": "x"}\n'},
        "<train.jsonl>, line 2: invalid UTF-8",
    ),
    corpus(
        "files",
        {"train.en": AB * 5 + b"a\x00b\n", "train.de": XY * 6},
        "<train.en>, line 6: contains a NUL byte",
    ),
    corpus(
        "tsv", {"train.tsv": TSV * 3 + b"a\x00\tb\n"}, "<train.tsv>, line 4: contains a NUL byte"
    ),
    corpus(
        "jsonl",
        {"train.jsonl": JSONL + b'{"en": "a\x00", "de": "b"}\n'},
        "<train.jsonl>, line 2: contains a NUL",
    ),
    # a line that is not a pair
    corpus(
        "tsv",
        {"train.tsv": TSV + b"no tab here\n"},
        "<train.tsv>, line 2: expected 2 tab-separated fields",
    ),
    corpus("jsonl", {"train.jsonl": JSONL + b"{broken\n"}, "<train.jsonl>, line 2: invalid JSON"),
    corpus("jsonl", {"train.jsonl": b'{"en": "a"}\n'}, "<train.jsonl>, line 1: no key 'de'"),
    # a corpus that cleaning empties: the split, the rule that removed what, and the file
    corpus(
        "tsv",
        {"train.tsv": b"a b c\tx y z\n" * 3},
        "train split is empty after cleaning: all 3 pairs were dropped (too_long 3)",
        "<train.tsv>",
        max_len=2,
    ),
    corpus(
        "tsv",
        {"train.tsv": b"a\tb c d e\n" * 3},
        "all 3 pairs were dropped (ratio 3)",
        "<train.tsv>",
    ),
    corpus(
        "tsv",
        {"train.tsv": b"a\tb\n" * 3},
        "all 3 pairs were dropped (too_short 3)",
        "<train.tsv>",
        min_len=2,
    ),
    corpus(
        "files",
        {"train.en": b"\n  \na\n", "train.de": b"x\n\n\n"},
        "all 3 pairs were dropped (empty 3)",
        "<train.en> and <train.de>",
    ),
    corpus(
        "tsv",
        {"train.tsv": TSV * 30, "valid.tsv": b"\tx\n"},
        "the valid split is empty after cleaning",
        "(empty 1)",
        "<valid.tsv>",
    ),
    corpus(
        "tsv",
        {"train.tsv": b""},
        "the train split of the corpus is empty: <train.tsv> gave no pairs",
    ),
    # files that are not there
    corpus("tsv", {"train.tsv": None}, "corpus file <train.tsv> does not exist"),
    corpus("files", {"train.en": AB, "train.de": None}, "corpus file <train.de> does not exist"),
]


@pytest.mark.parametrize(("kind", "contents", "clean", "needles"), CORPORA)
def test_bad_corpus(
    make_recipe: Callable[..., Path],
    tmp_path: Path,
    kind: str,
    contents: dict[str, bytes | None],
    clean: dict,
    needles: list[str],
) -> None:
    source, paths = write_corpus(tmp_path / "corpus", kind, contents)
    recipe = make_recipe(
        {"data": {"source": source, "clean": clean}, "tokenizer": {"vocab_size": 40}}
    )
    assert_clean_failure(run_cli("prepare", recipe), *(fill(n, paths) for n in needles))
    assert no_prepared_data(tmp_path / "run")


@pytest.mark.parametrize(
    ("vocab_size", "needle"),
    [
        (16, "tokenizer.vocab_size=16 is too small for this corpus: its characters and the"),
        (5000, "tokenizer.vocab_size=5000 is too large for this corpus"),
    ],
)
def test_vocabulary_that_does_not_fit_the_corpus(
    files_recipe: Path, tmp_path: Path, vocab_size: int, needle: str
) -> None:
    result = run_cli("prepare", files_recipe, "--set", f"tokenizer.vocab_size={vocab_size}")
    assert_clean_failure(result, needle, "--set tokenizer.vocab_size=")
    assert no_prepared_data(tmp_path / "run")


def toy_corpus(kind: str, pairs: list[tuple[str, str]], line_end: str = "\n") -> dict[str, bytes]:
    """`pairs` as the files of a source type, every line ended by `line_end`."""

    def encode(lines: list[str]) -> bytes:
        return "".join(line + line_end for line in lines).encode()

    if kind == "files":
        return {
            "train.en": encode([s for s, _ in pairs]),
            "train.de": encode([t for _, t in pairs]),
        }
    if kind == "tsv":
        return {"train.tsv": encode([f"{s}\t{t}" for s, t in pairs])}
    return {"train.jsonl": encode([json.dumps({"en": s, "de": t}) for s, t in pairs])}


def prepare_ok(make_recipe: Callable[..., Path], root: Path, kind: str, contents: dict) -> dict:
    """Prepare a corpus that must be accepted; returns the manifest."""
    source, _ = write_corpus(root / "corpus", kind, contents)
    recipe = make_recipe({"data": {"source": source}, "tokenizer": {"vocab_size": 40}})
    result = run_cli("prepare", recipe)
    assert result.exit_code == 0, result.stderr
    return json.loads((root / "run" / "data" / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", ["files", "tsv", "jsonl"])
def test_crlf_line_ends_are_accepted(
    make_recipe: Callable[..., Path], tmp_path: Path, kind: str
) -> None:
    pairs = toy_pairs(200, seed=0)
    manifest = prepare_ok(make_recipe, tmp_path, kind, toy_corpus(kind, pairs, "\r\n"))
    assert manifest["clean"]["train"]["read"] == 200
    text = tmp_path / "run" / "data" / "text"
    for lang, side in (("en", 0), ("de", 1)):
        data = (text / f"train.{lang}").read_bytes()
        assert b"\r" not in data
        assert set(data.decode().splitlines()) == {pair[side] for pair in pairs}


@pytest.mark.parametrize("kind", ["files", "tsv"])
def test_a_100k_character_line_is_dropped_by_the_length_rule(
    make_recipe: Callable[..., Path], tmp_path: Path, kind: str
) -> None:
    long_line = ("the big dog " * 10_000)[:100_000]  # 25,000 words
    pairs = [*toy_pairs(200, seed=0), (long_line, "der Hund")]
    manifest = prepare_ok(make_recipe, tmp_path, kind, toy_corpus(kind, pairs))
    counts = manifest["clean"]["train"]
    assert counts["read"] == 201 and counts["too_long"] == 1
    assert counts["kept"] == len(set(toy_pairs(200, seed=0)))
    text = (tmp_path / "run" / "data" / "text" / "train.en").read_text(encoding="utf-8")
    assert max(map(len, text.splitlines())) < 1000


# -------------------------------------------------------------------------------- checkpoints

TINY_MODEL = {
    "embed_size": 8,
    "hidden_size": 8,
    "encoder_layers": 1,
    "attention": "luong_dot",
    "input_feeding": "none",
    "dropout": 0.0,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/recipe.yaml and root/run: a tiny model trained for 2 updates (a few seconds)."""
    root = tmp_path_factory.mktemp("trained")
    recipe = toy_run_recipe(
        root,
        {"train": (200, 0), "valid": (10, 1), "test": (10, 2)},
        max_words=6,
        tokenizer={"vocab_size": 32},
        model=TINY_MODEL,
        train={
            "batch_tokens": 200,
            "valid_every": 2,
            "max_steps": 2,
            "device": "cpu",
            "early_stopping": {"patience": None},
        },
        decode={"beam_size": 2},
    )
    for command in ("prepare", "train"):
        result = run_cli(command, recipe)
        assert result.exit_code == 0, result.stderr
    return root


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class RunsShell:
    """Unpickling this would run a shell command (a module torch blocks outright)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class Prints:
    """Unpickling this would call print (a builtin that is not allowed)."""

    def __reduce__(self) -> tuple:
        return (print, ("CODE RAN ON LOAD",))


class Touches:
    """A plain class instance: unpickling it would run __setstate__, which touches a marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).touch()


def write_bad_checkpoint(kind: str, path: Path, good: Path) -> None:
    """A bad checkpoint of `kind` at `path`, made from the good checkpoint `good` where needed;
    the code-running kinds would create `path`.ran if they ever ran."""
    path.unlink(missing_ok=True)  # last.pt may share its inode with best.pt and step files
    marker = path.with_name(path.name + ".ran")
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a checkpoint\n", encoding="utf-8")
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "averaged":  # what `nmtkit average` writes: weights, no training state
        checkpoint = Checkpoint.read(good)
        checkpoint.training = None
        checkpoint.write(path)
    elif kind in ("newer", "damaged"):  # the stored dict itself, as a future or broken nmtkit
        payload = torch.load(good, weights_only=True)
        if kind == "newer":
            payload["format_version"] = 99
        else:
            payload["recipe"] = None
        torch.save(payload, path)
    else:
        code = {"os.system": RunsShell(marker), "print": Prints(), "instance": Touches(marker)}
        torch.save({"kind": "nmtkit-checkpoint", "model": code[kind]}, path)


BAD_CHECKPOINTS = [
    pytest.param("truncated", "is not a readable checkpoint", id="truncated"),
    pytest.param("empty", "is not a readable checkpoint", id="empty"),
    pytest.param("text", "is not a readable checkpoint", id="text"),
    pytest.param("tensor", "is a PyTorch file but not an nmtkit checkpoint", id="tensor"),
    pytest.param("newer", "has checkpoint format 99, newer than this nmtkit reads", id="newer"),
    pytest.param("damaged", "is damaged: recipe missing or of the wrong type", id="damaged"),
    pytest.param("os.system", "was refused", id="os.system"),
    pytest.param("print", "was refused", id="print"),
    pytest.param("instance", "was refused", id="instance"),
]
CODE_KINDS = ["os.system", "print", "instance"]


@pytest.mark.parametrize(("kind", "needle"), BAD_CHECKPOINTS)
def test_bad_checkpoint_through_translate(
    trained: Path, tmp_path: Path, kind: str, needle: str
) -> None:
    bad = tmp_path / "bad.pt"
    write_bad_checkpoint(kind, bad, trained / "run" / "checkpoints" / "last.pt")
    src, out = write_lines(tmp_path / "in.en", ["the dog"]), tmp_path / "out.de"
    result = run_cli("translate", "-m", bad, "-i", src, "-o", out)
    assert_clean_failure(result, f"{bad} {needle}")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(("kind", "needle"), BAD_CHECKPOINTS)
def test_bad_checkpoint_through_train_resume(
    trained: Path, tmp_path: Path, kind: str, needle: str
) -> None:
    recipe = copy_run(trained, tmp_path / "t")
    run = tmp_path / "t" / "run"
    last = run / "checkpoints" / "last.pt"
    write_bad_checkpoint(kind, last, trained / "run" / "checkpoints" / "last.pt")
    before = snapshot(run)
    assert_clean_failure(run_cli("train", recipe, "--set", "train.max_steps=4"), f"{last} {needle}")
    assert snapshot(run) == before  # no checkpoint, log or recipe written


def test_resume_from_an_averaged_checkpoint_is_refused(trained: Path, tmp_path: Path) -> None:
    """An averaged checkpoint translates but holds no training state to resume."""
    recipe = copy_run(trained, tmp_path / "a")
    run = tmp_path / "a" / "run"
    last = run / "checkpoints" / "last.pt"
    write_bad_checkpoint("averaged", last, trained / "run" / "checkpoints" / "last.pt")
    before = snapshot(run)
    result = run_cli("train", recipe, "--set", "train.max_steps=4")
    assert_clean_failure(result, f"{last} cannot be resumed: it holds no training state")
    assert snapshot(run) == before
    src = write_lines(tmp_path / "in.en", ["the dog"])
    assert run_cli("translate", "-m", last, "-i", src).exit_code == 0


@pytest.mark.parametrize("command", ["translate", "train"])
@pytest.mark.parametrize("kind", CODE_KINDS)
def test_code_in_a_checkpoint_never_runs(
    trained: Path, tmp_path: Path, command: str, kind: str
) -> None:
    recipe = copy_run(trained, tmp_path / "t")
    last = tmp_path / "t" / "run" / "checkpoints" / "last.pt"
    write_bad_checkpoint(kind, last, trained / "run" / "checkpoints" / "last.pt")
    if command == "translate":
        result = run_cli("translate", "-m", last, input="the dog\n")
    else:
        result = run_cli("train", recipe, "--set", "train.max_steps=4")
    assert_clean_failure(result, str(last))
    assert not last.with_name("last.pt.ran").exists()
    assert "CODE RAN ON LOAD" not in result.stdout + result.stderr


def test_resume_on_data_with_another_tokenizer(trained: Path, tmp_path: Path) -> None:
    """The changed tokenizer first fails the prepared data's fingerprint; once the data is
    prepared again with it, the checkpoint's tokenizer no longer matches the data."""
    recipe = copy_run(trained, tmp_path / "t")
    run = tmp_path / "t" / "run"
    checkpoints = snapshot(run / "checkpoints")
    other = ["--set", "tokenizer.vocab_size=34"]
    stale = run_cli("train", recipe, *other)
    assert_clean_failure(stale, f"the prepared data in {run / 'data'} no longer matches the recipe")
    assert run_cli("prepare", recipe, *other).exit_code == 0
    result = run_cli("train", recipe, *other)
    assert_clean_failure(
        result,
        f"{run / 'checkpoints' / 'last.pt'} was trained with another tokenizer than the prepared "
        f"data in {run / 'data'}",
        "--restart",
    )
    assert snapshot(run / "checkpoints") == checkpoints


def test_evaluate_a_run_with_a_bad_checkpoint_writes_no_report(
    trained: Path, tmp_path: Path
) -> None:
    copy_run(trained, tmp_path / "t")
    run = tmp_path / "t" / "run"
    best = run / "checkpoints" / "best.pt"
    write_bad_checkpoint("truncated", best, trained / "run" / "checkpoints" / "best.pt")
    assert_clean_failure(run_cli("evaluate", run), f"{best} is not a readable checkpoint")
    reports = (
        sorted(p.name for p in (run / "reports").glob("*")) if (run / "reports").exists() else []
    )
    assert reports in ([], ["training.png"])  # training's own curves; no test report
    assert not (run / "translations" / "test.de").exists()


# ---------------------------------------------------------------------------- translate input

JUNK = b"the dog\n\xff\xfe" + bytes(random.Random(0).randrange(256) for _ in range(4000))


def test_binary_input_file_names_the_line(trained: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "junk.en", tmp_path / "out.de"
    src.write_bytes(JUNK)
    result = run_cli("translate", "-m", trained / "run", "-i", src, "-o", out)
    assert_clean_failure(result, f"{src}, line 2: invalid UTF-8")
    assert not out.exists()  # at most the clearly partial out.de.partial


def test_binary_stdin_names_the_line(trained: Path) -> None:
    assert_clean_failure(
        run_cli("translate", "-m", trained / "run", input=JUNK), "stdin, line 2: invalid UTF-8"
    )


LONG_LINE = ("the dog sees a cat " * 6000)[:100_000]


@pytest.mark.parametrize("via", ["stdin", "file"])
@pytest.mark.parametrize(
    ("text", "expected_lines", "empty", "warning"),
    [
        pytest.param("", 0, [], None, id="empty"),
        pytest.param("the dog\na cat\nthe man", 3, [], None, id="no final newline"),
        pytest.param("the dog\n   \n\t\n\na cat\n", 5, [1, 2, 3], None, id="whitespace lines"),
        pytest.param("the dog\r\na cat\r\n", 2, [], None, id="crlf"),
        pytest.param(LONG_LINE + "\nthe cat\n", 2, [], "line 1:", id="100k characters"),
    ],
)
def test_odd_but_valid_input_keeps_one_line_per_line(
    trained: Path,
    tmp_path: Path,
    via: str,
    text: str,
    expected_lines: int,
    empty: list[int],
    warning: str | None,
) -> None:
    command = ["translate", "-m", trained / "run", "--max-len-ratio", "0.1"]  # short outputs
    if via == "stdin":
        result = run_cli(*command, input=text.encode())
        output = result.stdout
    else:
        src, out = tmp_path / "in.en", tmp_path / "out.de"
        src.write_bytes(text.encode())
        result = run_cli(*command, "-i", src, "-o", out)
        output = out.read_text(encoding="utf-8")
        assert not list(tmp_path.glob("*.partial"))
    assert result.exit_code == 0, result.stderr
    lines = output.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == expected_lines
    assert [i for i, line in enumerate(lines[:-1]) if not line] == empty
    if warning is None:
        assert "warning" not in result.stderr
    else:
        assert f"{warning} " in one_line(result.stderr) and "truncated to 399" in result.stderr


def nmtkit_process(*args: object) -> subprocess.Popen:
    """`python -m nmtkit ARGS` with every stream a pipe."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "nmtkit", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_stdin_closed_mid_line(trained: Path) -> None:
    proc = nmtkit_process("translate", "-m", trained / "run", "--greedy")
    stdout, stderr = proc.communicate(b"the dog\na cat sees\nthe ol", timeout=120)
    assert proc.returncode == 0, stderr
    assert stdout.decode().count("\n") == 3 and stdout.endswith(b"\n")


def test_reader_that_goes_away_is_not_an_error(trained: Path) -> None:
    """`nmtkit translate ... | head -1`: the output (jsonl with attention, ~2 MB) is far more
    than a pipe holds, so writes fail with EPIPE once the reader has gone."""
    proc = nmtkit_process("translate", "-m", trained / "run", "-f", "jsonl", "--attention")
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"the dog sees a cat\n" * 300)  # 6 kB: the pipe takes it all at once
    proc.stdin.close()
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert first.startswith(b'{"line": 1')
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


# ----------------------------------------------------------------------------------- evaluate


@pytest.fixture
def texts(tmp_path: Path) -> dict[str, Path]:
    refs = ["das Haus ist alt", "der Hund", "eine Katze sieht den Mann"]
    binary = tmp_path / "binary.de"
    binary.write_bytes(b"\x00\x01\n\x02\n\x03\n")
    return {
        "ref": write_lines(tmp_path / "ref.de", refs),
        "hyp": write_lines(tmp_path / "hyp.de", ["das Haus ist neu", "der Hund", "eine Katze"]),
        "src": write_lines(tmp_path / "src.en", ["the house is old", "the dog", "a cat sees"]),
        "short": write_lines(tmp_path / "short.de", ["der Hund"]),
        "empty": write_lines(tmp_path / "empty.de", []),
        "empty_ref": write_lines(tmp_path / "empty_ref.de", []),
        "missing": tmp_path / "missing.de",
        "binary": binary,
    }


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ("--hyp <short> --ref <ref>", ["<short> has 1", "<ref> has 3"]),
        ("--hyp <hyp> --ref <ref> --src <short>", ["<ref> has 3", "<short> has 1"]),
        ("--hyp <hyp> --compare x=<short> --ref <ref>", ["<short> has 1", "<ref> has 3"]),
        ("--hyp <empty> --ref <ref>", ["<empty> has 0", "<ref> has 3"]),
        ("--hyp <empty> --ref <empty_ref>", ["nothing to evaluate: <empty_ref> is empty"]),
        ("--hyp <hyp> --ref <ref> --buckets 10,5", ["bucket edges [10, 5]", "strictly increasing"]),
        ("--hyp <hyp> --ref <ref> --buckets 10,10", ["strictly increasing"]),
        ("--hyp <hyp> --ref <ref> --buckets 10,ten", ["bad length bucket edges '10,ten'"]),
        ("--hyp <hyp> --ref <ref> --buckets 0,5", ["greater than or equal to 1"]),
        ("--hyp <missing> --ref <ref>", ["<missing> does not exist"]),
        ("--hyp <hyp> --ref <missing>", ["<missing> does not exist"]),
        ("--hyp <hyp> --ref <ref> --src <missing>", ["<missing> does not exist"]),
        ("--hyp <binary> --ref <ref>", ["<binary>, line 1: contains a NUL byte"]),
    ],
)
def test_bad_evaluate_input(
    texts: dict[str, Path], tmp_path: Path, args: str, needles: list[str]
) -> None:
    report, plot = tmp_path / "out" / "report.json", tmp_path / "out" / "bleu.png"
    command = ["evaluate", *fill(args, texts).split(), "--json", report, "--plot", plot]
    assert_clean_failure(run_cli(*command), *(fill(n, texts) for n in needles))
    assert not report.exists() and not plot.exists()
