"""The recipe schema: defaults, overrides, and the exact wording users see for mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nmtkit.data.sources import iter_pairs
from nmtkit.recipe import Recipe, RecipeError, load_recipe, parse_duration
from tests.conftest import one_line, run_cli

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    return str(info.value)


def test_every_shipped_recipe_validates() -> None:
    recipes = sorted((REPO / "recipes").rglob("*.yaml"))
    assert recipes
    for path in recipes:
        assert isinstance(load_recipe(path), Recipe)


def test_defaults_and_run_dir(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "name: demo\n"))
    assert recipe.run_path == Path("runs/demo")
    assert recipe.data.source.kind == "synthetic"
    assert recipe.tokenizer.vocab_size == 8000
    assert recipe.evaluate.buckets == [10, 20, 30, 40, 50]
    assert load_recipe(write(tmp_path, "name: a\nrun_dir: x/y\n")).run_path == Path("x/y")


def test_overrides_convert_types_and_create_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\n")
    recipe = load_recipe(
        path,
        [
            "tokenizer.vocab_size=4000",
            "tokenizer.joint=false",
            "model.dropout=0.3",
            "train.max_time=8m",
            "evaluate.buckets=[5, 15]",
            "data.source.synthetic.pairs=123",
        ],
    )
    assert recipe.tokenizer.vocab_size == 4000 and recipe.tokenizer.joint is False
    assert recipe.model.dropout == 0.3
    assert recipe.train.max_time == 480.0
    assert recipe.evaluate.buckets == [5, 15]
    assert recipe.data.source.synthetic is not None
    assert recipe.data.source.synthetic.pairs == 123


def test_resolved_recipe_round_trips(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "name: demo\ntrain: {max_time: 2h}\n"))
    text = recipe.to_yaml()
    assert "files:" not in text  # unused source types are not written out
    again = load_recipe(write(tmp_path, text))
    assert again == recipe


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        # typo: file, line, dotted key and the suggestion
        (
            "name: d\ntokenizer:\n  vocab_sise: 4000\n",
            (),
            "r.yaml: line 3: tokenizer.vocab_sise: unknown key; did you mean `vocab_size`?",
        ),
        ("name: d\nmodell: {}\n", (), "line 2: modell: unknown key; did you mean `model`?"),
        # wrong choice: the allowed values
        (
            "name: d\nmodel: {cell: lsmt}\n",
            (),
            "line 2: model.cell: Input should be 'lstm', 'gru', 'peephole_lstm', 'layernorm_lstm' "
            "or 'layernorm_gru' (got 'lsmt')",
        ),
        # out of range
        (
            "name: d\ntokenizer: {vocab_size: 3}\n",
            (),
            "tokenizer.vocab_size: Input should be greater than or equal to 16 (got 3)",
        ),
        # wrong type
        ("name: d\ntrain: {lr: fast}\n", (), "train.lr: Input should be a valid number"),
        # errors from --set name the option, not a line
        ("name: d\n", ("decode.beam_size=0",), "--set decode.beam_size: Input should be greater"),
        ("name: d\n", ("tokenizer.vocab_sise=1",), "did you mean `vocab_size`?"),
        # missing required key
        ("data: {}\n", (), "name: required key is missing"),
        # source: an unknown type, and not exactly one
        ("name: d\ndata: {source: {csv: {}}}\n", (), "data.source.csv: unknown key"),
        ("name: d\ndata: {source: {}}\n", (), "give exactly one source type out of synthetic"),
        # cross-field checks
        (
            "name: d\nmodel: {attention: multihead, hidden_size: 10, attention_heads: 3}\n",
            (),
            "attention_heads (3) must divide hidden_size (10)",
        ),
        (
            "name: d\ntokenizer: {joint: false}\nmodel: {share_embeddings: true}\n",
            (),
            "model.share_embeddings needs one vocabulary",
        ),
        ("name: d\nevaluate: {buckets: [10, 5]}\n", (), "strictly increasing"),
        ("name: d\ndata: {clean: {min_len: 9, max_len: 3}}\n", (), "min_len (9) is larger"),
        ("name: d\ntrain: {max_time: soon}\n", (), "expected a duration such as 90"),
        ("name: d\ndata: {src_lang: en, tgt_lang: en}\n", (), "src_lang and tgt_lang are both"),
    ],
)
def test_validation_messages(
    tmp_path: Path, text: str, overrides: tuple[str, ...], expected: str
) -> None:
    assert expected in error_of(write(tmp_path, text), overrides)


def test_several_mistakes_are_reported_together(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "name: d\nmodel: {cell: x}\ntrain: {lr: -1}\n"))
    assert "model.cell" in message and "train.lr" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("name: d\nmodel: [\n", "invalid YAML at line 3"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_unreadable_recipes(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(write(tmp_path, text))


def test_missing_and_directory_recipes(tmp_path: Path) -> None:
    assert "does not exist" in error_of(tmp_path / "nope.yaml")
    assert "is a directory" in error_of(tmp_path)


@pytest.mark.parametrize("item", ["novalue", "=3", "a..b=1"])
def test_malformed_override(tmp_path: Path, item: str) -> None:
    assert "expected KEY.PATH=VALUE" in error_of(write(tmp_path, "name: d\n"), (item,))


def test_override_into_a_scalar_is_an_error(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "name: d\n"), ("name.x=1",))
    assert "name is a string, not a section" in message


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400
    assert parse_duration(30) == 30
    assert parse_duration(None) is None
    with pytest.raises(ValueError):
        parse_duration("5 weeks")


def test_cli_reports_typo_with_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "name: d\ntokenizer:\n  vocab_sise: 4000\n")
    result = run_cli("prepare", path)
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert message.startswith("error: ")
    assert f"{path}: line 3: tokenizer.vocab_sise: unknown key; did you mean `vocab_size`?" in (
        message
    )
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_set_typo(tmp_path: Path) -> None:
    result = run_cli("prepare", write(tmp_path, "name: d\n"), "--set", "model.hiden_size=3")
    assert result.exit_code == 2
    assert "--set model.hiden_size: unknown key; did you mean `hidden_size`?" in one_line(
        result.stderr
    )


def test_resolved_recipe_is_yaml_with_every_section(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "name: demo\n"))
    raw = yaml.safe_load(recipe.to_yaml())
    assert list(raw) == [
        "name",
        "run_dir",
        "data_dir",
        "data",
        "tokenizer",
        "model",
        "train",
        "decode",
        "evaluate",
    ]


def corpus_folder(folder: Path, prefixes: tuple[str, ...], langs: tuple[str, ...] = ("en", "de")):
    """A folder of parallel text files PREFIX.LANG (one pair per prefix), as a user keeps them."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in prefixes:
        for lang in langs:
            (folder / f"{prefix}.{lang}").write_text(f"{prefix} {lang}\n", encoding="utf-8")
    return folder


def test_files_folder_finds_train_valid_and_the_test_set(tmp_path: Path) -> None:
    folder = corpus_folder(tmp_path / "m30k", ("train", "valid", "test2016"))
    recipe = load_recipe(write(tmp_path, f"name: d\ndata: {{source: {{files: {folder}}}}}\n"))
    files = recipe.data.source.files
    assert files is not None and files.valid is not None and files.test is not None
    assert (files.train.src, files.train.tgt) == (folder / "train.en", folder / "train.de")
    assert (files.valid.src, files.test.tgt) == (folder / "valid.en", folder / "test2016.de")
    # the languages name the suffixes, so the direction flips with them
    flipped = load_recipe(
        write(tmp_path, f"name: d\ndata: {{source: {{files: {folder}}}}}\n"),
        ["data.src_lang=de", "data.tgt_lang=en"],
    ).data.source.files
    assert flipped is not None and flipped.train.src == folder / "train.de"
    # `dev` counts as validation; without a valid or test set, those splits are absent
    only = corpus_folder(tmp_path / "other", ("train", "dev"))
    found = load_recipe(
        write(tmp_path, f"name: d\ndata: {{source: {{files: {only}}}}}\n")
    ).data.source.files
    assert found is not None and found.valid is not None and found.test is None
    assert found.valid.src == only / "dev.en"


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ((), "is not a folder"),
        (("valid",), "has no train.en and train.de"),
        (("train", "test2016", "test2017"), "several test sets (test2016, test2017); name one"),
    ],
)
def test_files_folder_errors(tmp_path: Path, prefixes: tuple[str, ...], expected: str) -> None:
    folder = corpus_folder(tmp_path / "c", prefixes) if prefixes else tmp_path / "missing"
    message = error_of(write(tmp_path, f"name: d\ndata: {{source: {{files: {folder}}}}}\n"))
    assert expected in message and "data.source.files:" in message and str(folder) in message


def test_an_override_naming_a_source_type_replaces_the_recipes(tmp_path: Path) -> None:
    """The real-data recipe reads the hub; one `--set` points it at local files instead."""
    folder = corpus_folder(tmp_path / "m30k", ("train", "valid", "test2016"))
    recipe = load_recipe(REPO / "recipes" / "multi30k-cpu.yaml")
    assert recipe.data.source.kind == "hf"
    local = load_recipe(REPO / "recipes" / "multi30k-cpu.yaml", [f"data.source.files={folder}"])
    assert local.data.source.kind == "files" and local.data.source.hf is None
    assert list(iter_pairs(local.data, "test")) == [("test2016 en", "test2016 de")]
    # an override inside the recipe's own source type keeps it
    kept = load_recipe(REPO / "recipes" / "multi30k-cpu.yaml", ["data.source.hf.config=x"])
    assert kept.data.source.hf is not None and kept.data.source.hf.config == "x"


def test_multi30k_recipe_reads_the_hub_layout(tmp_path: Path) -> None:
    """bentrevett/multi30k: train.jsonl, val.jsonl, test.jsonl with `en` and `de` keys; the hub
    names the splits train/validation/test. Same files read through the `json` builder."""
    files = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        path = tmp_path / f"{stem}.jsonl"
        path.write_text(json.dumps({"en": f"{stem} en", "de": f"{stem} de"}) + "\n", "utf-8")
        files[split] = str(path)
    recipe = load_recipe(
        REPO / "recipes" / "multi30k-cpu.yaml",
        ["data.source.hf.name=json", f"data.source.hf.data_files={json.dumps(files)}"],
    )
    assert [list(iter_pairs(recipe.data, split)) for split in ("train", "valid", "test")] == [
        [("train en", "train de")],
        [("val en", "val de")],
        [("test en", "test de")],
    ]


def test_no_recipe_reads_a_path_outside_the_repository() -> None:
    """A user's clone has nothing beside it: every local path a shipped recipe names is inside
    the repository (and the real-data recipes read the hub)."""
    for path in sorted((REPO / "recipes").rglob("*.yaml")):
        recipe = load_recipe(path)
        for value in [recipe.run_dir, recipe.data_dir, recipe.train.init_from]:
            assert value is None or not Path(value).is_absolute(), path
            assert value is None or ".." not in Path(value).parts, path
        source = recipe.data.source
        assert source.kind in ("synthetic", "hf"), f"{path} reads local files"
