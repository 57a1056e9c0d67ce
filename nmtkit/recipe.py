"""The recipe: one YAML file that describes an experiment, validated once.

Every section is a pydantic model with extra keys forbidden, so a typo is an error, not a
silently ignored setting; mistakes become a `RecipeError` worded by `nmtkit.recipe_errors`.
Only the top-level run functions see the whole recipe; each builder gets its own section.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nmtkit import builtin_recipes
from nmtkit.errors import UserError
from nmtkit.paths import RunPaths
from nmtkit.recipe_errors import describe_validation_error, describe_yaml_error, kind_of

# Every choice set of the recipe, declared once; the models, search and evaluation use these.
Split = Literal["train", "valid", "test"]
InitScheme = Literal["uniform", "xavier"]
CellKind = Literal["lstm", "gru", "peephole_lstm", "layernorm_lstm", "layernorm_gru"]
AttentionKind = Literal[
    "none", "bahdanau", "luong_dot", "luong_general", "luong_concat", "multihead"
]
FeedingKind = Literal["none", "concat", "linear", "gated"]
InitKind = Literal["final", "bridge", "mean", "zeros"]
Precision = Literal["fp32", "bf16", "fp16"]
DecodePrecision = Literal["auto", "fp32", "bf16", "fp16"]
TrainPrecision = DecodePrecision  # the same choices: auto (resolved per device) or a Precision
LengthBy = Literal["source", "reference"]
WordDropoutMode = Literal["unk", "zero"]


class RecipeError(UserError):
    """A recipe that cannot be read or does not validate."""


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors; assignments are validated;
    numbers must be finite (`.inf` or `.nan` would pass every range check)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SyntheticSource(Section):
    """The built-in English->German generator (`nmtkit.data.synthetic`)."""

    pairs: int = Field(60000, ge=1, description="training pairs")
    valid: int = Field(1000, ge=0, description="validation pairs (disjoint from train)")
    test: int = Field(2000, ge=0, description="test pairs (disjoint from train and valid)")
    seed: int = Field(1, description="same seed, byte-identical corpus")


class ParallelFiles(Section):
    """Two aligned text files, one sentence per line."""

    src: Path
    tgt: Path


class FilesSource(Section):
    """Local parallel text files per split: `{src: FILE, tgt: FILE}`, or a path prefix that
    `data.src_lang`/`tgt_lang` complete (`corpus/train` reads `corpus/train.en` and
    `corpus/train.de`; see `DataConfig._complete_prefixes`), so that
    `--set data.src_lang=de --set data.tgt_lang=en` flips the direction. `files: DIR`, a
    folder, finds the prefixes in it (`files_in_folder`)."""

    train: ParallelFiles
    valid: ParallelFiles | None = None
    test: ParallelFiles | None = None


class TsvSource(Section):
    """Local TSV files per split, one `src<TAB>tgt` pair per line."""

    train: Path
    valid: Path | None = None
    test: Path | None = None


class JsonlSource(Section):
    """Local JSON-lines files per split: flat keys, or a `translation` dict per line."""

    train: Path
    valid: Path | None = None
    test: Path | None = None
    src_key: str | None = Field(None, description="default: data.src_lang (or translation dict)")
    tgt_key: str | None = Field(None, description="default: data.tgt_lang (or translation dict)")


class HfSplits(Section):
    """Which Hugging Face split feeds each nmtkit split (null: none)."""

    train: str = "train"
    valid: str | None = "validation"
    test: str | None = "test"


class HfSource(Section):
    """A Hugging Face `datasets` corpus: a hub name, a local `save_to_disk` folder, or a builder
    such as `json`/`parquet` with `data_files`."""

    name: str
    config: str | None = None
    revision: str | None = None
    splits: HfSplits = HfSplits()
    data_files: dict[str, str | list[str]] | None = None
    src_key: str | None = Field(None, description="default: translation dict, else src_lang")
    tgt_key: str | None = Field(None, description="default: translation dict, else tgt_lang")


SOURCE_TYPES = ("synthetic", "files", "tsv", "jsonl", "hf")
MAX_LEN_RATIO = 10.0  # decode.max_len_ratio / --max-len-ratio: longest output, per source token
SHORTLIST_TOP_K = 100  # candidates per source piece a checkpoint's lexical table keeps


class FolderProblem(str):
    """Why `source.files: DIR` found no corpus; DataConfig finds it (it knows the languages),
    SourceConfig raises it, so the error names the key `data.source.files`."""


class SourceConfig(Section):
    """Exactly one of the source types."""

    synthetic: SyntheticSource | None = None
    files: FilesSource | None = None
    tsv: TsvSource | None = None
    jsonl: JsonlSource | None = None
    hf: HfSource | None = None

    @field_validator("files", mode="before")
    @classmethod
    def _folder_problem(cls, value: Any) -> Any:
        if isinstance(value, FolderProblem):
            raise ValueError(str(value))
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        given = [name for name in SOURCE_TYPES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one source type out of {', '.join(SOURCE_TYPES)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in SOURCE_TYPES if getattr(self, name) is not None)


class CleanConfig(Section):
    """Filters applied before tokenization; lengths count whitespace-separated words."""

    min_len: int = Field(1, ge=0, description="drop pairs with a side shorter than this")
    max_len: int = Field(128, ge=1, description="drop pairs with a side longer than this")
    max_ratio: float = Field(3.0, ge=1.0, description="drop pairs whose length ratio exceeds this")
    dedup: bool = Field(True, description="drop repeated (src, tgt) pairs")
    splits: list[Split] = Field(
        ["train"], description="splits the rules apply to; others keep every non-empty pair"
    )

    @model_validator(mode="after")
    def _bounds(self) -> CleanConfig:
        if self.min_len > self.max_len:
            raise ValueError(f"min_len ({self.min_len}) is larger than max_len ({self.max_len})")
        return self


class DataConfig(Section):
    src_lang: str = Field("en", min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    tgt_lang: str = Field("de", min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    source: SourceConfig = SourceConfig(synthetic=SyntheticSource())
    clean: CleanConfig = CleanConfig()

    @model_validator(mode="before")
    @classmethod
    def _complete_prefixes(cls, raw: Any) -> Any:
        """`source.files.<split>: PREFIX` -> `{src: PREFIX.<src_lang>, tgt: PREFIX.<tgt_lang>}`,
        before validation, so every other mistake is described as in the explicit form."""
        if not isinstance(raw, dict) or not isinstance(raw.get("source"), dict):
            return raw
        source = raw["source"]
        files = source.get("files")
        langs = {
            side: raw.get(f"{side}_lang", cls.model_fields[f"{side}_lang"].default)
            for side in ("src", "tgt")
        }
        if isinstance(files, str | Path):
            try:
                files = files_in_folder(Path(files), (str(langs["src"]), str(langs["tgt"])))
            except ValueError as exc:  # reported by SourceConfig at the key `source.files`
                return {**raw, "source": {**source, "files": FolderProblem(str(exc))}}
        if not isinstance(files, dict):
            return raw
        completed = {
            split: {side: f"{value}.{lang}" for side, lang in langs.items()}
            if isinstance(value, str | Path)
            else value
            for split, value in files.items()
        }
        return {**raw, "source": {**source, "files": completed}}

    @model_validator(mode="after")
    def _distinct_langs(self) -> DataConfig:
        if self.src_lang == self.tgt_lang:
            raise ValueError(f"src_lang and tgt_lang are both {self.src_lang!r}")
        return self


VALID_PREFIXES = ("valid", "val", "dev", "validation")  # what a folder may call its valid split


def files_in_folder(folder: Path, langs: tuple[str, str]) -> dict[str, str]:
    """`source.files: DIR` -> the split prefixes in DIR for which both `.<lang>` files exist:
    `train`, the first of `VALID_PREFIXES` (optional), and `test` or the one `test*` prefix
    (optional; several are ambiguous). Raises ValueError, worded for the recipe error."""
    if not folder.is_dir():
        raise ValueError(
            f"{folder} is not a folder; give a folder holding train.{langs[0]} "
            f"and train.{langs[1]}, or a prefix per split ({{train: DIR/train, ...}})"
        )

    def complete(prefix: str) -> bool:
        return all((folder / f"{prefix}.{lang}").is_file() for lang in langs)

    if not complete("train"):
        raise ValueError(
            f"{folder} has no train.{langs[0]} and train.{langs[1]} "
            f"(data.src_lang / data.tgt_lang name the files' suffixes)"
        )
    found = {"train": str(folder / "train")}
    valid = next((prefix for prefix in VALID_PREFIXES if complete(prefix)), None)
    if valid is not None:
        found["valid"] = str(folder / valid)
    tests = sorted(
        {path.name.removesuffix(f".{langs[0]}") for path in folder.glob(f"test*.{langs[0]}")}
    )
    tests = [prefix for prefix in tests if complete(prefix)]
    if "test" in tests:
        tests = ["test"]
    if len(tests) > 1:
        raise ValueError(
            f"{folder} holds several test sets ({', '.join(tests)}); "
            f"name one: {{train: {folder}/train, test: {folder}/{tests[0]}}}"
        )
    if tests:
        found["test"] = str(folder / tests[0])
    return found


class TokenizerConfig(Section):
    type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = Field(8000, ge=16, le=1_000_000)
    joint: bool = Field(True, description="one vocabulary for both languages")
    character_coverage: float = Field(1.0, gt=0.0, le=1.0)
    input_sentence_size: int = Field(
        200_000, ge=1, description="SentencePiece trains on a random sample of at most this many"
    )
    threads: int = Field(0, ge=0, description="0: all cores")


class ModelConfig(Section):
    cell: CellKind = "lstm"
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(256, ge=1)
    encoder_layers: int = Field(2, ge=1)
    decoder_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    attention: AttentionKind = "luong_general"
    attention_heads: int = Field(4, ge=1)
    input_feeding: FeedingKind = "concat"
    init: InitKind = "bridge"
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="between layers and before output")
    embed_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="dropout on embeddings; null: same as dropout"
    )
    word_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="training only: each source and target input token is replaced (see "
        "word_dropout_mode) with this probability; 0: off",
    )
    word_dropout_mode: WordDropoutMode = Field(
        "unk", description="unk: the token becomes <unk>; zero: its embedding becomes zeros"
    )
    variational_dropout: bool = Field(
        False,
        description="dropout and embed_dropout draw one mask per sequence, shared by all time "
        "steps (Gal & Ghahramani 2016), instead of one per position; stacked layers then run "
        "one RNN module each (the fused multi-layer RNN can only drop out per position)",
    )
    residual: bool = Field(False, description="residual connections between stacked layers")
    tie_embeddings: bool = True
    share_embeddings: bool = False
    param_init: InitScheme = Field(
        "uniform",
        description="uniform: every parameter U(-init_range, init_range) (OpenNMT-py, Luong "
        "et al. 2015); xavier: Xavier linears, torch's RNN default, forget-gate bias 1",
    )
    init_range: float = Field(0.1, gt=0.0, le=1.0, description="bound for param_init: uniform")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be even with a bidirectional encoder "
                "(each direction has hidden_size / 2 units)"
            )
        if self.attention == "multihead" and self.hidden_size % self.attention_heads:
            raise ValueError(
                f"attention_heads ({self.attention_heads}) must divide hidden_size "
                f"({self.hidden_size}) for multihead attention"
            )
        return self


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float | None:
    """'90' / '90s' / '8m' / '2h' / '1d' / 90 -> seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))  # a boolean (True) never matches
    if match:
        return float(match.group(1)) * _SECONDS[match.group(2)]
    raise ValueError(f"expected a duration such as 90, '90s', '8m', '2h' or '1d', got {value!r}")


class EarlyStopping(Section):
    metric: Literal["bleu", "chrf", "loss", "ppl"] = "bleu"
    patience: int | None = Field(5, ge=1, description="validations without improvement; null: off")


class TrainConfig(Section):
    seed: int = 1
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: TrainPrecision = Field(
        "auto",
        description="auto: bf16 on a CPU with AMX or a GPU that supports it, else fp32; "
        "the resolved recipe holds the choice",
    )
    batch_tokens: int = Field(4096, ge=1, description="tokens per batch, padding included")
    accum_steps: int = Field(1, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(0.001, gt=0.0)
    schedule: Literal["constant", "inverse_sqrt", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    clip_norm: float | None = Field(1.0, gt=0.0)
    max_steps: int | None = Field(None, ge=1)
    max_epochs: int | None = Field(None, ge=1)
    max_time: float | None = Field(None, gt=0.0, description="seconds, or '8m', '2h'")
    valid_every: int = Field(500, ge=1)
    log_every: int = Field(100, ge=1)
    early_stopping: EarlyStopping = EarlyStopping()
    keep_checkpoints: int = Field(3, ge=1)
    average_last: int | None = Field(
        None,
        ge=2,
        description="at the end, average the weights of the last N validated checkpoints into "
        "avg.pt (validated and evaluated beside best.pt); those N are kept until then",
    )
    init_from: Path | None = Field(
        None,
        description="fine-tune: start from this checkpoint's weights (fresh optimizer, schedule "
        "and data position); its tokenizers encode this recipe's corpus",
    )
    tensorboard: bool = Field(
        True, description="write TensorBoard event files to <run>/tensorboard when installed"
    )

    _max_time = field_validator("max_time", mode="before")(parse_duration)


class DecodeConfig(Section):
    beam_size: int = Field(5, ge=1)
    alpha: float = Field(1.0, ge=0.0, description="GNMT length penalty exponent")
    max_len_ratio: float = Field(2.0, gt=0.0, le=MAX_LEN_RATIO)
    batch_tokens: int = Field(8000, ge=1, description="source tokens per batch, padding included")
    max_src_tokens: int = Field(
        400, ge=2, description="longer inputs are truncated to this many pieces (EOS included)"
    )
    precision: DecodePrecision = Field(
        "auto",
        description="decoding precision; auto: train.precision on a GPU, fp32 elsewhere",
    )
    shortlist: bool | Literal["auto"] = Field(
        "auto",
        description="restrict each sentence's output to the target pieces the lexical table "
        "predicts for its source pieces plus the most frequent ones; auto: "
        "where the checkpoint has a table (every checkpoint training writes has one) and the "
        "target vocabulary has at least 2,000 pieces",
    )
    shortlist_k: int = Field(
        50, ge=1, le=SHORTLIST_TOP_K, description="candidates per source piece (shortlist)"
    )
    shortlist_frequent: int = Field(
        100, ge=0, description="most frequent target pieces always in the shortlist"
    )


class EvaluateConfig(Section):
    buckets: list[Annotated[int, Field(ge=1)]] = Field([10, 20, 30, 40, 50], min_length=1)
    by: LengthBy = "source"

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, buckets: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in itertools.pairwise(buckets)):
            raise ValueError(f"bucket edges must be strictly increasing, got {buckets}")
        return buckets


class Recipe(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    run_dir: Path | None = Field(None, description="default: runs/<name>")
    data_dir: Path | None = Field(
        None, description="prepared data; default: <run_dir>/data. Runs may share one."
    )
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    decode: DecodeConfig = DecodeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _cross_section(self) -> Recipe:
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ValueError(
                "model.share_embeddings needs one vocabulary for both languages "
                "(tokenizer.joint: true)"
            )
        return self

    @property
    def run_path(self) -> Path:
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name

    @property
    def paths(self) -> RunPaths:
        """The run directory's layout, with the prepared data where `data_dir` says."""
        return RunPaths(self.run_path, self.data_dir)

    def to_yaml(self) -> str:
        """The resolved recipe, every default filled in, loadable by `load_recipe`."""
        raw = self.model_dump(mode="json")
        raw["data"]["source"] = {k: v for k, v in raw["data"]["source"].items() if v is not None}
        return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override (`key.path=value`, value parsed as YAML) and validate a recipe: a file,
    or the name of a built-in recipe (`demo`; `nmtkit.builtin_recipes`), a file winning."""
    spec, path = path, builtin_recipes.find_recipe(path)
    if not path.exists():
        if builtin_recipes.looks_like_name(spec):
            raise RecipeError(builtin_recipes.unknown_recipe(str(spec)))
        raise RecipeError(f"recipe {path} does not exist{builtin_recipes.missing_file_hint(path)}")
    if path.is_dir():
        raise RecipeError(f"recipe {path} is a directory; give the path of a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"recipe {path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    return parse_recipe(text, path, overrides)


def parse_recipe(
    text: str, origin: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """Validate recipe YAML `text`; errors name `origin` (a file, or e.g. a checkpoint)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{origin}: {describe_yaml_error(exc)}") from None
    if raw is None:
        raise RecipeError(f"{origin} is empty; a recipe needs at least a `name:`")
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{origin}: the top level must be a mapping of sections, not a {kind_of(raw)}"
        )
    overridden = {key for key, _ in (apply_override(raw, item) for item in overrides)}
    _replace_overridden_source(raw, overridden)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc, text, overridden, root=Recipe)
        raise RecipeError(f"{origin}: {problems}") from None


def _replace_overridden_source(raw: dict[str, Any], overridden: set[str]) -> None:
    """An override that names a source type replaces the recipe's source type:
    `--set data.source.files=DIR` on a recipe that reads `hf` reads the files instead."""
    named = {key.split(".")[2] for key in overridden if key.startswith("data.source.")}
    named &= set(SOURCE_TYPES)
    source = raw.get("data", {}).get("source") if isinstance(raw.get("data"), dict) else None
    if named and isinstance(source, dict):
        for kind in set(SOURCE_TYPES) - named:
            source.pop(kind, None)


def apply_override(raw: dict[str, Any], item: str) -> tuple[str, Any]:
    """Set `a.b.c=value` in the nested dict `raw`; the value is parsed as YAML (typed)."""
    key, sep, value_text = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or not all(parts):
        raise RecipeError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. model.hidden_size=512")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        value = value_text  # not YAML: keep the literal string
    node = raw
    for depth, part in enumerate(parts[:-1]):
        if (child := node.get(part)) is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise RecipeError(f"--set {key}: {prefix} is a {kind_of(child)}, not a section")
        node = child
    node[parts[-1]] = value
    return key, value
