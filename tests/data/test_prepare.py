"""`nmtkit prepare` through the CLI: outputs, reruns, and every bad input from the issue."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nmtkit.data.manifest import PreparedData
from nmtkit.errors import UserError
from nmtkit.recipe import load_recipe
from tests.conftest import one_line, run_cli, write_lines


def prepared(recipe: Path) -> PreparedData:
    return PreparedData.open(load_recipe(recipe).run_path / "data")


def test_prepare_writes_shards_that_decode_to_the_cleaned_text(files_recipe: Path) -> None:
    result = run_cli("prepare", files_recipe)
    assert result.exit_code == 0, result.stderr
    assert "cleaning (pairs)" in result.stdout and "shards" in result.stdout
    data = prepared(files_recipe)
    manifest = data.manifest
    assert set(manifest.splits) == {"train", "valid"}
    assert manifest.dtype == "<u2"
    assert manifest.tokenizer.joint is True
    assert manifest.recipe["tokenizer"]["vocab_size"] == 48
    src_tok, tgt_tok = data.tokenizer("src"), data.tokenizer("tgt")
    assert manifest.tokenizer.src_sha256 == src_tok.sha256
    for split in ("train", "valid"):
        src, tgt = data.shards(split)
        text_src = data.text(split, "src").read_text().splitlines()
        text_tgt = data.text(split, "tgt").read_text().splitlines()
        assert data.text(split, "src") == data.root / "text" / f"{split}.en"
        assert len(src) == len(tgt) == len(text_src) == manifest.splits[split].pairs
        assert [src_tok.decode(src[i]) for i in range(len(src))] == text_src
        assert [tgt_tok.decode(tgt[i]) for i in range(len(tgt))] == text_tgt
        assert manifest.splits[split].src.tokens == int(src.lengths.sum())
    counts = manifest.clean["train"]
    assert counts["read"] == 600 and counts["kept"] + counts["duplicate"] == 600
    resolved = load_recipe(data.root.parent / "recipe.resolved.yaml")
    assert resolved == load_recipe(files_recipe)


def test_rerun_does_nothing_and_force_redoes(files_recipe: Path) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    manifest = prepared(files_recipe).root / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = run_cli("prepare", files_recipe)
    assert again.exit_code == 0
    assert "up to date" in one_line(again.stderr) and "nothing redone" in one_line(again.stderr)
    assert manifest.stat().st_mtime_ns == stamp
    forced = run_cli("prepare", files_recipe, "--force")
    assert forced.exit_code == 0 and "up to date" not in forced.stderr
    assert manifest.stat().st_mtime_ns != stamp


def test_changed_settings_or_inputs_redo(files_recipe: Path, toy_files: dict) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    changed = run_cli("prepare", files_recipe, "--set", "tokenizer.vocab_size=40")
    assert changed.exit_code == 0 and "up to date" not in changed.stderr
    assert prepared(files_recipe).manifest.tokenizer.src_vocab_size == 40
    with open(toy_files["train"]["src"], "a") as f, open(toy_files["train"]["tgt"], "a") as g:
        f.write("one more line\n")
        g.write("eine Zeile mehr\n")
    redone = run_cli("prepare", files_recipe, "--set", "tokenizer.vocab_size=40")
    assert redone.exit_code == 0 and "up to date" not in redone.stderr
    assert prepared(files_recipe).manifest.clean["train"]["read"] == 601


def test_separate_vocabularies(files_recipe: Path) -> None:
    result = run_cli(
        "prepare",
        files_recipe,
        "--set",
        "tokenizer.joint=false",
        "--set",
        "tokenizer.vocab_size=30",
    )
    assert result.exit_code == 0, result.stderr
    data = prepared(files_recipe)
    assert data.manifest.tokenizer.src_model == "spm.src.model"
    assert data.manifest.tokenizer.tgt_model == "spm.tgt.model"
    assert data.tokenizer("src").sha256 != data.tokenizer("tgt").sha256


def test_missing_split_is_reported(files_recipe: Path) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    with pytest.raises(Exception, match="has no test split"):
        prepared(files_recipe).shards("test")


# ----------------------------------------------------------------------------- bad input


def assert_user_error(result: object, *fragments: str) -> None:
    """Exit code 2, one 'error:' paragraph holding every fragment, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    message = one_line(stderr[stderr.index("error:") :])
    for fragment in fragments:
        assert fragment in message, message


def no_trusted_data(recipe: Path) -> bool:
    run = load_recipe(recipe).run_path
    return not (run / "data" / "manifest.json").exists() and not (run / "data.partial").exists()


def test_missing_file(make_recipe: Callable[..., Path], tmp_path: Path) -> None:
    recipe = make_recipe({"data": {"source": {"tsv": {"train": str(tmp_path / "nope.tsv")}}}})
    assert_user_error(
        run_cli("prepare", recipe), f"corpus file {tmp_path / 'nope.tsv'} does not exist"
    )
    assert no_trusted_data(recipe)


def test_mismatched_line_counts(make_recipe: Callable[..., Path], tmp_path: Path) -> None:
    src = write_lines(tmp_path / "c.en", ["a b"] * 7)
    tgt = write_lines(tmp_path / "c.de", ["x y"] * 4)
    recipe = make_recipe(
        {"data": {"source": {"files": {"train": {"src": str(src), "tgt": str(tgt)}}}}}
    )
    assert_user_error(run_cli("prepare", recipe), f"{src} has 7 lines", f"{tgt} has 4")
    assert no_trusted_data(recipe)


def test_invalid_utf8(make_recipe: Callable[..., Path], tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"a b\tx y\nc \xe4 d\tz\n")
    recipe = make_recipe({"data": {"source": {"tsv": {"train": str(path)}}}})
    assert_user_error(run_cli("prepare", recipe), f"{path}, line 2: invalid UTF-8")
    assert no_trusted_data(recipe)


def test_corpus_emptied_by_cleaning_says_which_rule(
    make_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "long.tsv", ["a b c d e\tv w x y z"] * 3 + ["\tleer"])
    recipe = make_recipe(
        {"data": {"source": {"tsv": {"train": str(path)}}, "clean": {"max_len": 4}}}
    )
    assert_user_error(
        run_cli("prepare", recipe),
        "the train split is empty after cleaning: all 4 pairs were dropped (empty 1, too_long 3)",
    )
    assert no_trusted_data(recipe)


def test_unknown_source_type(make_recipe: Callable[..., Path]) -> None:
    recipe = make_recipe({"data": {"source": {"csv": {"train": "x.csv"}}}})
    assert_user_error(
        run_cli("prepare", recipe),
        "data.source.csv: unknown key",
        "Known keys here: synthetic, files, tsv, jsonl, hf",
    )


def test_unreachable_hub(make_recipe: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    recipe = make_recipe({"data": {"source": {"hf": {"name": "nmtkit-test/not-cached"}}}})
    assert_user_error(
        run_cli("prepare", recipe), "the Hugging Face hub is unreachable", "save_to_disk"
    )
    assert no_trusted_data(recipe)


def test_failed_rerun_keeps_the_previous_data(files_recipe: Path, toy_files: dict) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    before = (prepared(files_recipe).root / "manifest.json").read_text()
    with open(toy_files["train"]["src"], "ab") as f:
        f.write(b"\xff\xfe broken\n")
    os.utime(toy_files["train"]["src"])
    result = run_cli("prepare", files_recipe)
    assert result.exit_code == 2
    assert (prepared(files_recipe).root / "manifest.json").read_text() == before
    assert not (load_recipe(files_recipe).run_path / "data.partial").exists()


def test_manifest_of_another_format_is_not_trusted(files_recipe: Path) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    path = prepared(files_recipe).root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    result = run_cli("prepare", files_recipe)
    assert result.exit_code == 0 and "up to date" not in result.stderr
    assert json.loads(path.read_text())["format_version"] == 1


def test_a_manifest_with_missing_fields_is_a_clear_error_and_prepare_redoes_it(
    files_recipe: Path,
) -> None:
    assert run_cli("prepare", files_recipe).exit_code == 0
    root = prepared(files_recipe).root
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["tokenizer"]["src_sha256"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"manifest.json is not a valid manifest \(tokenizer"):
        PreparedData.open(root)
    train = run_cli("train", files_recipe)
    assert train.exit_code == 2 and "is not a valid manifest" in one_line(train.stderr)
    result = run_cli("prepare", files_recipe)
    assert result.exit_code == 0 and "up to date" not in result.stderr
    assert PreparedData.open(root).manifest.tokenizer.src_sha256


def test_a_manifest_naming_a_tokenizer_outside_the_data_directory_is_refused(
    files_recipe: Path,
) -> None:
    """`src_model`/`tgt_model` are bare file names: a path (relative, `..`, absolute) is a clear
    error naming the manifest and the key, before any file is opened."""
    assert run_cli("prepare", files_recipe).exit_code == 0
    root = prepared(files_recipe).root
    path = root / "manifest.json"
    good = json.loads(path.read_text())
    for key in ("src_model", "tgt_model"):
        for name in ("../spm.model", "/etc/passwd", "text/train.en", "..", ""):
            manifest = json.loads(json.dumps(good))
            manifest["tokenizer"][key] = name
            path.write_text(json.dumps(manifest))
            with pytest.raises(UserError) as caught:
                PreparedData.open(root)
            message = str(caught.value)
            assert f"{path} is not a valid manifest (tokenizer.{key}: " in message, name
            assert "bare name of a file in the data directory" in message
    train = run_cli("train", files_recipe)
    assert train.exit_code == 2
    assert f"{path} is not a valid manifest (tokenizer.tgt_model" in one_line(train.stderr)


def test_synthetic_source_writes_raw_text_and_is_deterministic(
    make_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    source = {"synthetic": {"pairs": 300, "valid": 20, "test": 30, "seed": 3}}
    recipe = make_recipe({"data": {"source": source}, "tokenizer": {"vocab_size": 200}})
    result = run_cli("prepare", recipe)
    assert result.exit_code == 0, result.stderr
    data = prepared(recipe)
    raw = data.root / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "test.de",
        "test.en",
        "train.de",
        "train.en",
        "valid.de",
        "valid.en",
    ]
    assert len((raw / "test.en").read_text().splitlines()) == 30
    assert data.manifest.splits["test"].pairs == 30
    first = (raw / "train.de").read_bytes()
    again = run_cli("prepare", recipe, "--force", "--set", f"run_dir={tmp_path / 'again'}")
    assert again.exit_code == 0
    assert (tmp_path / "again" / "data" / "raw" / "train.de").read_bytes() == first


def test_runs_share_one_data_dir(files_recipe: Path, tmp_path: Path) -> None:
    """`data_dir` puts the prepared data outside the run: a second run with the same data and
    tokenizer finds it up to date, and the run directory holds no data/ of its own."""
    shared = tmp_path / "shared-data"
    first = run_cli("prepare", files_recipe, "--set", f"data_dir={shared}")
    assert first.exit_code == 0, first.stderr
    assert (shared / "manifest.json").is_file()
    assert not (tmp_path / "run" / "data").exists()
    assert not list(tmp_path.glob("shared-data.*"))  # no staging or old copy left behind
    second = run_cli(
        "prepare", files_recipe, "--set", f"data_dir={shared}", "--set", f"run_dir={tmp_path}/b"
    )
    assert second.exit_code == 0 and "up to date" in one_line(second.stderr)
    resolved = load_recipe(tmp_path / "b" / "recipe.resolved.yaml")
    assert resolved.data_dir == shared and resolved.paths.data == shared
    elsewhere = run_cli("train", files_recipe, "--set", f"data_dir={tmp_path}/none")
    assert elsewhere.exit_code == 2
    assert f"no prepared data in {tmp_path}/none" in one_line(elsewhere.stderr)


def test_prepare_of_a_run_that_is_training_is_refused(files_recipe: Path) -> None:
    """`prepare` takes the run lock that `train` holds: `prepare --force` under a training run
    is refused with the trainer's message, and the data is untouched."""
    from nmtkit.paths import run_lock

    assert run_cli("prepare", files_recipe).exit_code == 0
    run = load_recipe(files_recipe).run_path
    before = (run / "data" / "manifest.json").read_text()
    with run_lock(run, "train"):
        result = run_cli("prepare", files_recipe, "--force")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert f"{run} is in use: `nmtkit train (pid {os.getpid()})` holds {run / '.lock'}" in message
    assert "Traceback" not in result.stderr
    assert (run / "data" / "manifest.json").read_text() == before
    assert run_cli("prepare", files_recipe, "--force").exit_code == 0  # the lock went with it


def test_a_shared_data_dir_is_locked_by_prepare_and_train(
    files_recipe: Path, tmp_path: Path
) -> None:
    """A `data_dir` outside the run: trainers hold it shared (side by side), `prepare`
    exclusively; a `prepare` under a trainer of another run is refused, and so is a `train`
    under a `prepare`."""
    from nmtkit.paths import data_lock

    shared = tmp_path / "shared-data"
    here = ["--set", f"data_dir={shared}"]
    other = [*here, "--set", f"run_dir={tmp_path / 'b'}"]
    assert run_cli("prepare", files_recipe, *here).exit_code == 0
    paths = load_recipe(files_recipe, [f"data_dir={shared}"]).paths
    lock = tmp_path / ".shared-data.lock"
    with data_lock(paths, "train", shared=True), data_lock(paths, "train", shared=True):
        result = run_cli("prepare", *[files_recipe, *other], "--force")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert f"{shared} is in use: an `nmtkit train` on this data holds {lock}" in message
    with data_lock(paths, "prepare", shared=False):
        result = run_cli("train", files_recipe, *other)
    assert result.exit_code == 2
    assert f"`nmtkit prepare (pid {os.getpid()})` holds {lock}" in one_line(result.stderr)
    assert not list(tmp_path.glob("shared-data.*"))
