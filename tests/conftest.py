"""Shared fixtures: tiny corpora on disk, recipes, and a CLI runner that separates the streams."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
import yaml
from hypothesis import settings
from typer.testing import CliRunner, Result

from nmtkit.cli import app

if TYPE_CHECKING:
    from nmtkit.translate import Translator

# Property tests draw the same examples on every run by default, so that `make test` (and CI)
# is reproducible; HYPOTHESIS_PROFILE=fuzz draws new ones each run, to search for more.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("fuzz")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Every test starts with this process's torch thread count. `serve` sets its own (the cores
    but one), and a float sum split over another number of threads rounds differently: a run
    trained here after a serve test would not equal the same run in a fresh subprocess."""
    yield
    if torch.get_num_threads() != _THREADS:
        torch.set_num_threads(_THREADS)


EN = "the a house dog cat sees runs big small green man woman old new".split()
DE = "das ein Haus Hund Katze sieht läuft groß klein grün Mann Frau alt neu".split()


def toy_pairs(n: int, seed: int = 0, max_words: int = 12) -> list[tuple[str, str]]:
    """Word-for-word 'translations' over a 14-word lexicon: enough for tokenizer and shards."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        idx = [rng.randrange(len(EN)) for _ in range(rng.randint(1, max_words))]
        pairs.append((" ".join(EN[i] for i in idx), " ".join(DE[i] for i in idx)))
    return pairs


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def toy_files(tmp_path: Path) -> dict[str, dict[str, Path]]:
    """Aligned text files for train (600 pairs) and valid (50 pairs)."""
    files: dict[str, dict[str, Path]] = {}
    for split, n, seed in (("train", 600, 0), ("valid", 50, 1)):
        pairs = toy_pairs(n, seed)
        files[split] = {
            "src": write_lines(tmp_path / "corpus" / f"{split}.en", [p[0] for p in pairs]),
            "tgt": write_lines(tmp_path / "corpus" / f"{split}.de", [p[1] for p in pairs]),
        }
    return files


@pytest.fixture
def make_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe YAML (a dict) into tmp_path, its run directory inside tmp_path too."""

    def write(content: dict, name: str = "recipe.yaml") -> Path:
        content = {"name": "t", "run_dir": str(tmp_path / "run"), **content}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def files_recipe(make_recipe: Callable[..., Path], toy_files: dict) -> Path:
    source = {split: {k: str(v) for k, v in sides.items()} for split, sides in toy_files.items()}
    return make_recipe({"data": {"source": {"files": source}}, "tokenizer": {"vocab_size": 48}})


def toy_run_recipe(
    root: Path, splits: dict[str, tuple[int, int]], *, max_words: int, **sections: object
) -> Path:
    """Write toy corpus files (split -> (pairs, seed)) and a recipe using them into `root`; the
    run directory is root/run. `sections` are the recipe's other sections (tokenizer, model...)."""
    files = {}
    for split, (n, seed) in splits.items():
        pairs = toy_pairs(n, seed, max_words=max_words)
        files[split] = {
            "src": str(write_lines(root / f"{split}.en", [p[0] for p in pairs])),
            "tgt": str(write_lines(root / f"{split}.de", [p[1] for p in pairs])),
        }
    recipe = {"name": "tiny", "run_dir": str(root / "run"), "data": {"source": {"files": files}}}
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, **sections}), encoding="utf-8")
    return path


def run_cli(*args: str, input: str | bytes | None = None) -> Result:
    """Invoke `nmtkit ARGS` in-process, `input` as stdin (bytes reach `sys.stdin.buffer` as
    they are); result.stdout and result.stderr are separate."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def one_line(text: str) -> str:
    """Whitespace-normalised text, so assertions do not depend on terminal wrapping."""
    return " ".join(text.split())


TINY_MODEL = {
    "cell": "lstm",
    "embed_size": 32,
    "hidden_size": 32,
    "bidirectional": True,
    "attention": "bahdanau",
    "input_feeding": "concat",
    "dropout": 0.0,
    # at 32 units, U(-0.1, 0.1) is a small init and 120 steps at lr 0.01 leave the model
    # repeating one output; Xavier (±0.3 here) learns the toy task within the budget
    "param_init": "xavier",
}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with a tiny attention model trained for 120 steps on the toy corpus,
    shared by every test that translates with a real model (translate, serve, the page).
    Tests may add files under it (translations, reports) but never change the checkpoints."""
    root = tmp_path_factory.mktemp("trained")
    path = toy_run_recipe(
        root,
        {"train": (600, 0), "valid": (30, 1), "test": (40, 2)},
        max_words=10,
        tokenizer={"vocab_size": 48},
        model=TINY_MODEL,
        train={
            "seed": 1,
            "lr": 0.01,
            "batch_tokens": 400,
            "valid_every": 60,
            "log_every": 60,
            "max_steps": 120,
            "keep_checkpoints": 2,
            "device": "cpu",
            # the same model on every machine (auto is bf16 only where the CPU has AMX)
            "precision": "fp32",
            "early_stopping": {"patience": None},
        },
        decode={"beam_size": 3, "batch_tokens": 300},
    )
    for command in ("prepare", "train"):
        result = run_cli(command, path)
        assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def translator(trained: Path) -> Translator:
    """`trained`'s model, loaded once, on the CPU, in fp32 (pinned: the invariants tested
    with it, scores equal across batches, forced decoding = beam search's score, ..., are
    exact in fp32 and hold to bf16's rounding only)."""
    from nmtkit.translate import Translator

    return Translator.load(trained / "run", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def sources(trained: Path) -> list[str]:
    """`trained`'s test sources."""
    return (trained / "test.en").read_text(encoding="utf-8").splitlines()
