"""The prepared-data manifest (`Manifest`, the only place that knows its keys) and
`PreparedData`, which owns every path inside a prepared data directory and the check that the
data is current for a recipe (the fingerprints agree). `manifest.json` is written last by
`nmtkit prepare`, so data without one is never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from nmtkit.data.lexical import LexicalTable, learn_lexical_table
from nmtkit.data.shards import Shard
from nmtkit.data.sources import file_stamp, input_files
from nmtkit.data.tokenizer import Tokenizer, TokenizerModels
from nmtkit.errors import UserError
from nmtkit.paths import SIDES, DataPaths, atomic_write_text
from nmtkit.recipe import Recipe

FORMAT_VERSION = 1


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerInfo(_Part):
    """The SentencePiece model(s) of the data: file names in the data directory, hashes, sizes."""

    joint: bool
    src_model: str
    tgt_model: str
    src_sha256: str
    tgt_sha256: str
    src_vocab_size: int
    tgt_vocab_size: int

    @field_validator("src_model", "tgt_model")
    @classmethod
    def _bare_file_name(cls, name: str) -> str:
        """A file of the data directory itself: a manifest cannot point outside it."""
        if name in ("", ".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
            raise ValueError(f"must be the bare name of a file in the data directory, got {name!r}")
        return name


class LengthStats(_Part):
    """Token counts of one side of one split."""

    tokens: int
    mean: float
    p50: int
    p95: int
    max: int


class SplitInfo(_Part):
    """Pairs and token counts of one split."""

    pairs: int
    src: LengthStats
    tgt: LengthStats


class Manifest(_Part):
    """What `prepare` wrote and from what; `splits` and `clean` keep the splits' order."""

    format_version: int
    nmtkit_version: str
    fingerprint: str
    created: str
    src_lang: str
    tgt_lang: str
    dtype: str
    tokenizer: TokenizerInfo
    splits: dict[str, SplitInfo]
    clean: dict[str, dict[str, int]]
    recipe: dict[str, Any]
    seconds: float = 0.0


def data_fingerprint(recipe: Recipe) -> str:
    """Hash of everything the prepared data depends on: settings, generator, input files."""
    tokenizer = recipe.tokenizer.model_dump(mode="json")
    tokenizer.pop("threads")  # how many cores encode does not change the result
    parts: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "data": recipe.data.model_dump(mode="json"),
        "tokenizer": tokenizer,
        "files": [file_stamp(p) for p in input_files(recipe.data)],
    }
    if recipe.train.init_from is not None:  # its tokenizers encode the corpus
        parts["tokenizer_from"] = file_stamp(recipe.train.init_from)
    if recipe.data.source.synthetic is not None:
        from nmtkit.data.synthetic import GENERATOR_VERSION

        parts["generator_version"] = GENERATOR_VERSION
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def write_manifest(data_dir: Path, manifest: Manifest) -> None:
    """Write `manifest.json` atomically: the last file `prepare` writes."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n"
    atomic_write_text(DataPaths(data_dir).manifest, text)


def read_manifest(data_dir: Path) -> Manifest:
    """The manifest in `data_dir`; a UserError if it is missing, invalid or of another format."""
    path = DataPaths(data_dir).manifest
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"no prepared data in {data_dir} ({path.name} missing); run `nmtkit prepare RECIPE`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path} is not a valid manifest ({exc}); rerun prepare with --force"
        ) from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path} has data format {version}, this nmtkit reads "
            f"{FORMAT_VERSION}; rerun `nmtkit prepare --force`"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(
            f"{path} is not a valid manifest ({where}: {first['msg']}); rerun prepare with --force"
        ) from None


def is_current(data_dir: Path, recipe: Recipe) -> bool:
    """Whether `data_dir` holds complete prepared data made from this recipe and its inputs."""
    try:
        return read_manifest(data_dir).fingerprint == data_fingerprint(recipe)
    except UserError:
        return False


class PreparedData:
    """A prepared data directory: its manifest and every path in it (text, shards, tokenizers)."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self._paths = DataPaths(self.root)

    @classmethod
    def open(cls, data_dir: Path) -> PreparedData:
        return cls(Path(data_dir), read_manifest(Path(data_dir)))

    @classmethod
    def for_recipe(cls, recipe: Recipe, *, need_valid: bool = True) -> PreparedData:
        """The recipe's prepared data, checked to be current (and to have a `valid` split)."""
        paths = recipe.paths
        if not paths.manifest.exists():
            raise UserError(f"no prepared data in {paths.data}; run `nmtkit prepare RECIPE` first")
        data = cls.open(paths.data)
        if data.manifest.fingerprint != data_fingerprint(recipe):
            raise UserError(
                f"the prepared data in {paths.data} no longer matches the recipe's data/tokenizer "
                "sections or input files; run `nmtkit prepare RECIPE` again"
            )
        if need_valid and "valid" not in data.manifest.splits:
            raise UserError("training needs a valid split; add one to data.source")
        return data

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.splits)

    def text(self, split: str, side: str) -> Path:
        """The cleaned text of one side (`src`/`tgt`) of a split, one sentence per line."""
        manifest = self.manifest
        return self._paths.text(split, manifest.src_lang if side == "src" else manifest.tgt_lang)

    def read_text(self, split: str, side: str) -> list[str]:
        with open(self.text(split, side), encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    def tokenizer(self, side: str) -> Tokenizer:
        info = self.manifest.tokenizer
        return Tokenizer.load(self.root / (info.src_model if side == "src" else info.tgt_model))

    def tokenizer_models(self) -> TokenizerModels:
        """The tokenizer model(s) as bytes, as a checkpoint stores them."""
        info, (src, tgt) = self.manifest.tokenizer, map(self.tokenizer, ("src", "tgt"))
        return TokenizerModels(
            info.joint, src.model_bytes, tgt.model_bytes, info.src_sha256, info.tgt_sha256
        )

    def lexical_table(self) -> LexicalTable:
        """The IBM Model 1 table of the training split, for decoding with shortlists (a few
        seconds; deterministic, so every run on this data learns the same table)."""
        src, tgt = self.shards("train")
        tok = self.manifest.tokenizer
        return learn_lexical_table(
            [src[i] for i in range(len(src))],
            [tgt[i] for i in range(len(tgt))],
            tok.src_vocab_size,
            tok.tgt_vocab_size,
        )

    def shards(self, split: str) -> tuple[Shard, Shard]:
        """(src, tgt) memory-mapped shards of a split."""
        if split not in self.manifest.splits:
            raise UserError(f"{self.root} has no {split} split (it has {', '.join(self.splits)})")
        src, tgt = (Shard(self._paths.shard(split, s), self.manifest.dtype) for s in SIDES)
        return src, tgt
