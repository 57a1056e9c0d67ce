"""The shipped recipes: every one validates; the real-corpus recipes' data path works on local
copies in the hub repositories' own layouts, end to end; the length study's systems differ only
in their model and share everything else; the length-study driver writes its report.

The hub cannot be reached here. Each real-corpus test writes a few hundred rows in the layout of
the hub repository (file names, folders, README `configs:`, column structure), then runs
`prepare`, `train` (a few steps, a small model of the same structure) and `evaluate` on the
recipe with only `data.source.hf.name` pointed at that folder: the same `datasets.load_dataset`
call, with the recipe's own config, revision, data_files and split names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nmtkit.recipe import load_recipe
from tests.conftest import run_cli, toy_pairs, write_lines

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
STUDY = sorted((RECIPES / "length-study").glob("*.yaml"))
SPLIT_ROWS = {"train": 300, "validation": 30, "test": 40}


def test_every_shipped_recipe_validates() -> None:
    recipes = sorted(RECIPES.rglob("*.yaml"))
    assert len(recipes) >= 9
    for path in recipes:
        recipe = load_recipe(path)
        assert recipe.name, path


# ------------------------------------------------------------------------- real corpora


def _rows(split: str, langs: tuple[str, str]) -> list[dict[str, str]]:
    src, tgt = langs
    pairs = toy_pairs(SPLIT_ROWS[split], seed=len(split), max_words=10)
    # toy_pairs gives (English-like, German-like); keep the languages where the keys say
    en_de = [{"en": en, "de": de} for en, de in pairs]
    return [{src: row[src], tgt: row[tgt]} for row in en_de]


def _parquet(path: Path, rows: list[dict[str, str]]) -> None:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list([{"translation": row} for row in rows]).to_parquet(str(path))


def multi30k_layout(root: Path) -> None:
    """bentrevett/multi30k: train.jsonl, val.jsonl, test.jsonl with `en` / `de` keys."""
    for split, name in (("train", "train"), ("validation", "val"), ("test", "test")):
        lines = [json.dumps(row, ensure_ascii=False) for row in _rows(split, ("en", "de"))]
        write_lines(root / f"{name}.jsonl", lines)


def iwslt2017_layout(root: Path) -> None:
    """IWSLT/iwslt2017 at refs/convert/parquet: <config>/<split>/0000.parquet, a
    `translation` dict per row; other configs beside it must not leak in."""
    for split in ("train", "validation", "test"):
        _parquet(root / "iwslt2017-de-en" / split / "0000.parquet", _rows(split, ("de", "en")))
        _parquet(
            root / "iwslt2017-en-it" / split / "0000.parquet",
            [{"en": "wrong config", "it": "configurazione sbagliata"}] * 5,
        )


def wmt14_layout(root: Path) -> None:
    """wmt/wmt14: README `configs:` naming <config>/<split>-NNNNN-of-NNNNN.parquet files."""
    configs = []
    for config in ("de-en", "fr-en"):
        files = []
        for split in ("train", "validation", "test"):
            rows = (
                _rows(split, ("de", "en"))
                if config == "de-en"
                else [{"fr": "mauvaise configuration", "en": "wrong config"}] * 5
            )
            _parquet(root / config / f"{split}-00000-of-00001.parquet", rows)
            files.append({"split": split, "path": f"{config}/{split}-*"})
        configs.append({"config_name": config, "data_files": files})
    card = "---\n" + yaml.safe_dump({"configs": configs}, sort_keys=False) + "---\n# wmt14\n"
    (root / "README.md").write_text(card, encoding="utf-8")


# The model's structure stays the recipe's (cell, layers, attention, feeding, init); only the
# sizes shrink so that a few steps take seconds.
SMALL = [
    "model.embed_size=16",
    "model.hidden_size=16",
    "model.attention_heads=2",
    "tokenizer.vocab_size=60",
    "tokenizer.input_sentence_size=1000",
    "train.device=cpu",
    "train.precision=fp32",
    "train.batch_tokens=300",
    "train.max_steps=4",
    "train.max_epochs=null",
    "train.valid_every=4",
    "train.log_every=2",
    "decode.beam_size=2",
]

REAL = {
    "multi30k-en-de": multi30k_layout,
    "iwslt2017-de-en": iwslt2017_layout,
    "wmt14-en-de-luong": wmt14_layout,
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_corpus_recipe_runs_end_to_end_on_a_local_copy(name: str, tmp_path: Path) -> None:
    path = RECIPES / f"{name}.yaml"
    hub = load_recipe(path).data.source.hf
    assert hub is not None and "/" in hub.name and not Path(hub.name).exists()
    layout: Callable[[Path], None] = REAL[name]
    layout(tmp_path / "hub")
    run_dir = tmp_path / "run"
    sets = [f"data.source.hf.name={tmp_path / 'hub'}", f"run_dir={run_dir}", *SMALL]
    args = [a for kv in sets for a in ("--set", kv)]

    prepared = run_cli("prepare", path, *args)
    assert prepared.exit_code == 0, prepared.stderr + prepared.stdout
    manifest = json.loads((run_dir / "data" / "manifest.json").read_text(encoding="utf-8"))
    recipe = load_recipe(run_dir / "recipe.resolved.yaml")
    src, tgt = recipe.data.src_lang, recipe.data.tgt_lang
    for split, hf_split in (("train", "train"), ("valid", "validation"), ("test", "test")):
        assert manifest["clean"][split]["read"] == SPLIT_ROWS[hf_split]  # no other config's rows
        expected = [row[tgt] for row in _rows(hf_split, (src, tgt))]
        text = (run_dir / "data" / "text" / f"{split}.{tgt}").read_text(encoding="utf-8")
        if split != "train":  # only train is cleaned (dedup): other splits arrive whole
            assert text.splitlines() == expected

    trained = run_cli("train", path, *args)
    assert trained.exit_code == 0, trained.stderr + trained.stdout
    assert (run_dir / "checkpoints" / "best.pt").is_file()

    scored = run_cli("evaluate", run_dir)
    assert scored.exit_code == 0, scored.stderr + scored.stdout
    hyps = (run_dir / "translations" / f"test.{tgt}").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == SPLIT_ROWS["test"]
    report = json.loads((run_dir / "reports" / "test.json").read_text(encoding="utf-8"))
    assert report["sentences"] == SPLIT_ROWS["test"]
    assert report["edges"] == recipe.evaluate.buckets
    assert (run_dir / "reports" / "test.png").stat().st_size > 0


def test_real_corpus_recipes_name_their_published_comparison() -> None:
    """The header states what to compare with and how that score was computed."""
    for name in REAL:
        header = (RECIPES / f"{name}.yaml").read_text(encoding="utf-8").split("\nname:")[0]
        assert "Compare with" in header, name
        assert "tokenized" in header and "sacrebleu" in header, name


# ---------------------------------------------------------------------------- length study


def _sections(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_length_study_systems_share_everything_but_the_model() -> None:
    names = {p.stem for p in STUDY}
    assert {"encdec", "bahdanau", "luong-general", "multihead"} <= names
    recipes = {p.stem: _sections(p) for p in STUDY}
    base = recipes["encdec"]
    for name, raw in recipes.items():
        for section in ("data", "tokenizer", "train", "decode", "evaluate", "data_dir"):
            assert raw[section] == base[section], (name, section)
        sizes = {k: raw["model"][k] for k in ("embed_size", "hidden_size", "encoder_layers")}
        assert sizes == {k: base["model"][k] for k in sizes}, name
        assert raw["run_dir"] == f"runs/length-study/{name}"
    assert base["model"]["attention"] == "none" and base["model"]["init"] == "final"
    assert recipes["bahdanau"]["model"]["attention"] == "bahdanau"
    assert recipes["luong-general"]["model"]["attention"] == "luong_general"
    assert recipes["luong-general"]["model"]["input_feeding"] != "none"
    assert recipes["multihead"]["model"]["attention"] == "multihead"


def test_length_study_driver_writes_the_report(tmp_path: Path) -> None:
    """scripts/length_study.py end to end on a tiny corpus: one prepare for all systems, a
    report with both systems per bucket, the plot, and a kept hand-written discussion."""
    out = tmp_path / "study.md"
    out.write_text(
        "<!-- discussion:start (hand-written; kept when the study is rerun) -->\n"
        "Kept words.\n<!-- discussion:end -->\n",
        encoding="utf-8",
    )
    tiny = [
        "data.source.synthetic.pairs=400",
        "data.source.synthetic.valid=20",
        "data.source.synthetic.test=30",
        "tokenizer.vocab_size=300",
        "model.embed_size=16",
        "model.hidden_size=16",
        "train.batch_tokens=500",
        "train.valid_every=3",
        "train.device=cpu",
    ]
    cmd = [sys.executable, str(ROOT / "scripts" / "length_study.py"), "--steps", "3"]
    cmd += ["--systems", "encdec,bahdanau", "--work", str(tmp_path / "w"), "--out", str(out)]
    cmd += [a for kv in tiny for a in ("--set", kv)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("$ nmtkit prepare") == 1
    text = out.read_text(encoding="utf-8")
    assert "Kept words." in text
    assert "![BLEU by source length](study.png)" in text
    assert (tmp_path / "study.png").stat().st_size > 0
    report = json.loads((tmp_path / "w" / "compare.json").read_text(encoding="utf-8"))
    assert report["systems"] == ["encdec", "bahdanau"] and report["sentences"] == 30
    for row in ("| encdec | lstm | none |", "| bahdanau | lstm | bahdanau |"):
        assert row in text
    assert "## BLEU by source length" in text and "## chrF by source length" in text
    assert "*sentences*" in text


def test_length_study_driver_refuses_a_study_without_its_baseline(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "length_study.py"), "--systems", "bahdanau"]
    cmd += ["--work", str(tmp_path / "w")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--systems must include the baseline 'encdec'" in done.stderr
    assert not (tmp_path / "w").exists()
