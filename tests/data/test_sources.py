"""Each source type yields the same (src, tgt) stream; bad files give errors naming file, line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmtkit.data.sources import SourceError, iter_pairs, one_line, read_lines
from nmtkit.recipe import DataConfig, HfSource
from tests.conftest import toy_pairs, write_lines

PAIRS = [*toy_pairs(20, seed=3), ("Fünf Äpfel, bitte.", "Fünf Äpfel, bitte. ✓")]


def data_config(source: dict) -> DataConfig:
    return DataConfig.model_validate({"source": source})


def test_files(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "a.en", [p[0] for p in PAIRS])
    tgt = write_lines(tmp_path / "a.de", [p[1] for p in PAIRS])
    data = data_config({"files": {"train": {"src": str(src), "tgt": str(tgt)}}})
    assert list(iter_pairs(data, "train")) == PAIRS


def test_tsv_with_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv"
    path.write_bytes("".join(f"{s}\t{t}\r\n" for s, t in PAIRS).encode())
    assert list(iter_pairs(data_config({"tsv": {"train": str(path)}}), "train")) == PAIRS


def test_jsonl_flat_keys_and_translation_dict(tmp_path: Path) -> None:
    flat = write_lines(tmp_path / "flat.jsonl", [json.dumps({"en": s, "de": t}) for s, t in PAIRS])
    nested = write_lines(
        tmp_path / "nested.jsonl",
        [json.dumps({"translation": {"en": s, "de": t}}) for s, t in PAIRS] + [""],
    )
    custom = write_lines(
        tmp_path / "custom.jsonl", [json.dumps({"source": s, "target": t}) for s, t in PAIRS]
    )
    for path, extra in (
        (flat, {}),
        (nested, {}),
        (custom, {"src_key": "source", "tgt_key": "target"}),
    ):
        data = data_config({"jsonl": {"train": str(path), **extra}})
        assert list(iter_pairs(data, "train")) == PAIRS


def test_inner_newlines_become_spaces() -> None:
    assert one_line("  a\nb\r\nc\u2028d  ") == "a b c d"


# ------------------------------------------------------------------------------ bad inputs


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "a.en", ["x"] * 5)
    tgt = write_lines(tmp_path / "a.de", ["y"] * 3)
    for first, second, counts in ((src, tgt, "has 5 lines"), (tgt, src, "has 3 lines")):
        data = data_config({"files": {"train": {"src": str(first), "tgt": str(second)}}})
        with pytest.raises(SourceError) as info:
            list(iter_pairs(data, "train"))
        message = str(info.value)
        assert f"{first} {counts}" in message
        assert str(second) in message and "different line counts" in message


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"ok\tok\nalso ok\tja\nbro\xffken\tkaputt\n")
    with pytest.raises(SourceError, match=r"bad.tsv, line 3: invalid UTF-8"):
        list(read_lines(path))


def test_nul_byte_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nul.txt"
    path.write_bytes(b"fine\nnot\x00fine\n")
    with pytest.raises(SourceError, match=r"nul.txt, line 2: contains a NUL byte"):
        list(read_lines(path))


def test_missing_file(tmp_path: Path) -> None:
    data = data_config({"tsv": {"train": str(tmp_path / "nope.tsv")}})
    with pytest.raises(SourceError, match=r"nope.tsv does not exist"):
        list(iter_pairs(data, "train"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("only one field", "line 2: expected 2 tab-separated fields (src<TAB>tgt), found 1"),
        ("a\tb\tc", "line 2: expected 2 tab-separated fields (src<TAB>tgt), found 3"),
    ],
)
def test_tsv_field_count(tmp_path: Path, line: str, expected: str) -> None:
    path = write_lines(tmp_path / "a.tsv", ["ok\tok", line])
    with pytest.raises(SourceError) as info:
        list(iter_pairs(data_config({"tsv": {"train": str(path)}}), "train"))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "line 1: invalid JSON"),
        ('{"en": "a"}', "line 1: no key 'de' (keys present: en)"),
        ('{"en": "a", "de": 5}', "line 1: value of 'de' is int, not a string"),
        ("[1, 2]", "line 1: expected a JSON object, found list"),
    ],
)
def test_jsonl_errors(tmp_path: Path, line: str, expected: str) -> None:
    path = write_lines(tmp_path / "a.jsonl", [line])
    with pytest.raises(SourceError) as info:
        list(iter_pairs(data_config({"jsonl": {"train": str(path)}}), "train"))
    assert expected in str(info.value)


# ------------------------------------------------------------------- Hugging Face datasets
# The hub cannot be reached here; the same `datasets` calls run on local data in hub layouts.


def hf_data(tmp_path: Path, **hf: object) -> DataConfig:
    return data_config({"hf": hf})


def test_hf_json_builder_with_flat_keys(tmp_path: Path) -> None:
    """bentrevett/multi30k layout: JSON lines with `en` and `de` keys."""
    for split in ("train", "validation"):
        write_lines(tmp_path / f"{split}.jsonl", [json.dumps({"en": s, "de": t}) for s, t in PAIRS])
    data = hf_data(
        tmp_path,
        name="json",
        data_files={s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation")},
        splits={"train": "train", "valid": "validation", "test": None},
    )
    assert list(iter_pairs(data, "train")) == PAIRS
    assert list(iter_pairs(data, "valid")) == PAIRS


def test_hf_parquet_builder_with_translation_dict(tmp_path: Path) -> None:
    """IWSLT/WMT layout: a `translation` dict per row, stored as parquet."""
    import datasets

    rows = {"translation": [{"en": s, "de": t} for s, t in PAIRS]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "train.parquet"))
    data = hf_data(tmp_path, name="parquet", data_files={"train": str(tmp_path / "train.parquet")})
    assert list(iter_pairs(data, "train")) == PAIRS


def test_hf_load_from_disk(tmp_path: Path) -> None:
    import datasets

    rows = {"translation": [{"en": s, "de": t} for s, t in PAIRS]}
    split = datasets.Dataset.from_dict(rows)
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "saved"))
    data = hf_data(tmp_path, name=str(tmp_path / "saved"))
    assert list(iter_pairs(data, "test")) == PAIRS
    # a recipe written for hub files (data_files) still reads a saved copy given as its name
    hub_recipe = hf_data(
        tmp_path, name=str(tmp_path / "saved"), data_files={"test": "de-en/test/*.parquet"}
    )
    assert list(iter_pairs(hub_recipe, "test")) == PAIRS
    with pytest.raises(SourceError, match="has no split 'validation'"):
        list(iter_pairs(data, "valid"))


def test_hf_missing_column_is_reported(tmp_path: Path) -> None:
    write_lines(tmp_path / "t.jsonl", [json.dumps({"english": "a", "german": "b"})])
    data = hf_data(tmp_path, name="json", data_files={"train": str(tmp_path / "t.jsonl")})
    with pytest.raises(SourceError, match=r"row 1: no key 'en' \(keys present: english, german\)"):
        list(iter_pairs(data, "train"))


def test_hf_unreachable_hub_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    data = data_config({"hf": HfSource(name="nmtkit-test/not-cached-anywhere").model_dump()})
    with pytest.raises(SourceError) as info:
        list(iter_pairs(data, "train"))
    message = str(info.value)
    assert "the Hugging Face hub is unreachable" in message
    assert "save_to_disk" in message and "jsonl" in message
