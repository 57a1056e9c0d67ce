"""`nmtkit prepare`: corpus -> cleaned pairs -> SentencePiece -> memory-mapped shards.

Built in `data.partial/` and swapped in whole, `manifest.json` last: a crash or a bad input
never leaves data that a later run would trust. A rerun with unchanged inputs and settings does
nothing (the manifest's fingerprint matches); `force=True` redoes everything. Memory does not
grow with the corpus: everything streams, SentencePiece samples at most
`tokenizer.input_sentence_size` sentences, and the duplicate filter keeps 8 bytes per kept pair.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from rich.progress import Progress

from nmtkit import __version__, console
from nmtkit.data import manifest as mf
from nmtkit.data.clean import RULES, CleanStats, clean_pairs
from nmtkit.data.shards import Shard, ShardWriter, token_dtype
from nmtkit.data.sources import Pair, available_splits, describe_split, iter_pairs
from nmtkit.data.tokenizer import Tokenizer, TokenizerModels, train_sentencepiece
from nmtkit.errors import UserError
from nmtkit.paths import SIDES, DataPaths, atomic_write_text, data_lock, run_lock
from nmtkit.recipe import DataConfig, Recipe

ENCODE_CHUNK = 10_000  # lines per SentencePiece batch call
PROGRESS_EVERY = 1_000  # pairs between progress-bar updates (per-pair updates cost more)
SPM_SEED = 1


def prepare(
    recipe: Recipe, *, force: bool = False, tokenizers: TokenizerModels | None = None
) -> mf.Manifest:
    """Prepare the recipe's data in its run directory; returns the manifest.

    `tokenizers`: encode with these SentencePiece models instead of training new ones: those of
    the checkpoint that `train.init_from` names (the caller reads it; it is required then), so a
    fine-tuned model keeps its vocabulary."""
    # The run's lock (a `train` of this run is refused, and refuses us), and the data_dir's.
    with run_lock(recipe.run_path, "prepare"), data_lock(recipe.paths, "prepare", shared=False):
        return _prepare(recipe, force=force, tokenizers=tokenizers)


def _prepare(recipe: Recipe, *, force: bool, tokenizers: TokenizerModels | None) -> mf.Manifest:
    paths = recipe.paths
    if recipe.train.init_from is not None and tokenizers is None:
        raise UserError(
            f"train.init_from ({recipe.train.init_from}) is set: prepare needs that checkpoint's "
            "tokenizers (`nmtkit prepare` reads them)"
        )
    fingerprint = mf.data_fingerprint(recipe)
    if not force and mf.is_current(paths.data, recipe):
        console.info(
            f"{paths.data} is up to date with the recipe and inputs: nothing redone "
            "(use --force to redo)."
        )
        atomic_write_text(paths.recipe, recipe.to_yaml())
        return mf.read_manifest(paths.data)
    started = time.perf_counter()
    staging = paths.data.with_name(paths.data.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        manifest = _prepare_into(recipe, DataPaths(staging), fingerprint, tokenizers)
        manifest = manifest.model_copy(update={"seconds": round(time.perf_counter() - started, 2)})
        mf.write_manifest(staging, manifest)
        old = paths.data.with_name(paths.data.name + ".old")  # swap the complete data in
        shutil.rmtree(old, ignore_errors=True)
        if paths.data.exists():
            paths.data.rename(old)
        staging.rename(paths.data)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_text(paths.recipe, recipe.to_yaml())
    _print_summary(manifest, paths.data)
    return manifest


def _prepare_into(
    recipe: Recipe, out: DataPaths, fingerprint: str, given: TokenizerModels | None
) -> mf.Manifest:
    data = recipe.data
    splits = available_splits(data)
    with console.progress("pairs") as bar:
        clean = {split: _read_split(recipe, split, out, bar) for split in splits}
    _check_not_empty(clean, data)
    tokenizers = _train_tokenizers(recipe, out) if given is None else _write_given(given, out)
    dtype = token_dtype(max(t.vocab_size for t in tokenizers.values()))
    with console.progress("lines") as bar:
        shards = {
            split: _encode_split(recipe, split, out, tokenizers, dtype, bar, clean[split].kept)
            for split in splits
        }
    joint = recipe.tokenizer.joint if given is None else given.joint
    model_name = {side: f"{out.spm_prefix(None if joint else side).name}.model" for side in SIDES}
    return mf.Manifest(
        format_version=mf.FORMAT_VERSION,
        nmtkit_version=__version__,
        fingerprint=fingerprint,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        src_lang=data.src_lang,
        tgt_lang=data.tgt_lang,
        dtype=dtype.str,
        tokenizer=mf.TokenizerInfo(
            joint=joint,
            src_model=model_name["src"],
            tgt_model=model_name["tgt"],
            src_sha256=tokenizers["src"].sha256,
            tgt_sha256=tokenizers["tgt"].sha256,
            src_vocab_size=tokenizers["src"].vocab_size,
            tgt_vocab_size=tokenizers["tgt"].vocab_size,
        ),
        splits=shards,
        clean={split: stats.as_dict() for split, stats in clean.items()},
        recipe={k: getattr(recipe, k).model_dump(mode="json") for k in ("data", "tokenizer")},
    )


def _read_split(recipe: Recipe, split: str, out: DataPaths, bar: Progress) -> CleanStats:
    """Stream one split from the source through cleaning into text files (raw too if synthetic)."""
    data = recipe.data
    synthetic = data.source.synthetic
    total = getattr(synthetic, "pairs" if split == "train" else split) if synthetic else None
    task = bar.add_task(f"read + clean {split}", total=total)
    stats = CleanStats()
    langs = (data.src_lang, data.tgt_lang)
    pairs = iter_pairs(data, split)
    if synthetic is not None:
        pairs = _tee_to_files(pairs, out.raw(split, langs[0]), out.raw(split, langs[1]))
    cleaned = clean_pairs(pairs, data.clean, split=split, stats=stats)
    for _ in _tee_to_files(cleaned, out.text(split, langs[0]), out.text(split, langs[1])):
        if stats.read % PROGRESS_EVERY == 0:
            bar.update(task, completed=stats.read)
    bar.update(task, completed=stats.read, total=stats.read)
    return stats


def _tee_to_files(pairs: Iterator[Pair], src_path: Path, tgt_path: Path) -> Iterator[Pair]:
    """Pass pairs through while writing each side, one line each, to a new UTF-8 file."""
    src_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(src_path, "w", encoding="utf-8", newline="\n") as src_f,
        open(tgt_path, "w", encoding="utf-8", newline="\n") as tgt_f,
    ):
        for src, tgt in pairs:
            src_f.write(src + "\n")
            tgt_f.write(tgt + "\n")
            yield src, tgt


def _check_not_empty(clean: dict[str, CleanStats], data: DataConfig) -> None:
    for split, stats in clean.items():
        if stats.kept:
            continue
        where = describe_split(data, split)
        if not stats.read:
            raise UserError(f"the {split} split of the corpus is empty: {where} gave no pairs")
        dropped = ", ".join(f"{rule} {n}" for rule, n in stats.dropped.items() if n)
        raise UserError(
            f"the {split} split is empty after cleaning: all {stats.read} pairs were dropped "
            f"({dropped}); relax data.clean (min_len, max_len, max_ratio) or check {where}"
        )


def _train_tokenizers(recipe: Recipe, out: DataPaths) -> dict[str, Tokenizer]:
    """Train one joint SentencePiece model, or one per side; returns {side: Tokenizer}."""
    cfg, data = recipe.tokenizer, recipe.data
    texts = {"src": out.text("train", data.src_lang), "tgt": out.text("train", data.tgt_lang)}
    groups = {None: list(texts.values())} if cfg.joint else {s: [texts[s]] for s in SIDES}
    trained: dict[str | None, Tokenizer] = {}
    for side, inputs in groups.items():
        what = "joint" if side is None else side
        status = f"training SentencePiece {cfg.type} ({what}, {cfg.vocab_size} pieces)"
        with console.err_console.status(status):
            started = time.perf_counter()
            model = train_sentencepiece(
                inputs,
                out.spm_prefix(side),
                model_type=cfg.type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                input_sentence_size=cfg.input_sentence_size,
                threads=cfg.threads,
                seed=SPM_SEED,
            )
        console.info(f"trained SentencePiece ({what}) in {time.perf_counter() - started:.1f}s")
        trained[side] = Tokenizer.load(model)
    return {side: trained[None if cfg.joint else side] for side in SIDES}


def _write_given(given: TokenizerModels, out: DataPaths) -> dict[str, Tokenizer]:
    """The given tokenizer model(s) written into the data as if trained here: {side: Tokenizer}."""
    models = {None: given.src} if given.joint else {"src": given.src, "tgt": given.tgt}
    loaded: dict[str | None, Tokenizer] = {}
    for side, model in models.items():
        path = out.spm_prefix(side)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + ".model").write_bytes(model)
        loaded[side] = Tokenizer(model)
    console.info("tokenizer: the SentencePiece model(s) of the checkpoint in train.init_from")
    return {side: loaded[None if given.joint else side] for side in SIDES}


def _encode_split(
    recipe: Recipe,
    split: str,
    out: DataPaths,
    tokenizers: dict[str, Tokenizer],
    dtype: np.dtype,
    bar: Progress,
    total: int,
) -> mf.SplitInfo:
    """Encode one split's text files into its two shards; returns counts and length stats."""
    langs = {"src": recipe.data.src_lang, "tgt": recipe.data.tgt_lang}
    stats: dict[str, mf.LengthStats] = {}
    for side in SIDES:
        task = bar.add_task(f"encode {split}.{side}", total=total)
        prefix = out.shard(split, side)
        with (
            ShardWriter(prefix, dtype) as writer,
            open(out.text(split, langs[side]), encoding="utf-8") as text,
        ):
            while chunk := [line.rstrip("\n") for line in islice(text, ENCODE_CHUNK)]:
                writer.add(tokenizers[side].encode(chunk, recipe.tokenizer.threads))
                bar.advance(task, len(chunk))
        stats[side] = _length_stats(Shard(prefix, dtype).lengths)
    return mf.SplitInfo(pairs=total, src=stats["src"], tgt=stats["tgt"])


def _length_stats(lengths: np.ndarray) -> mf.LengthStats:
    if not len(lengths):
        return mf.LengthStats(tokens=0, mean=0.0, p50=0, p95=0, max=0)
    return mf.LengthStats(
        tokens=int(lengths.sum()),
        mean=round(float(lengths.mean()), 2),
        p50=int(np.percentile(lengths, 50)),
        p95=int(np.percentile(lengths, 95)),
        max=int(lengths.max()),
    )


def _print_summary(manifest: mf.Manifest, data_dir: Path) -> None:
    clean = console.make_table("cleaning (pairs)", ["split", "read", *RULES, "kept"])
    for split, counts in manifest.clean.items():
        clean.add_row(split, *(f"{counts[k]:,}" for k in ("read", *RULES, "kept")))
    console.print_table(clean)
    stats = ("tokens", "len mean/p95/max")
    columns = ["split", "pairs", *(f"{side} {c}" for side in SIDES for c in stats)]
    shards = console.make_table("shards (SentencePiece tokens)", columns)
    for split, info in manifest.splits.items():
        cells = [f"{info.pairs:,}"]
        for s in (info.src, info.tgt):
            cells += [f"{s.tokens:,}", f"{s.mean:.1f} / {s.p95} / {s.max}"]
        shards.add_row(split, *cells)
    console.print_table(shards)
    tok = manifest.tokenizer
    vocab = "joint" if tok.joint else f"src / {tok.tgt_vocab_size:,} tgt"
    console.info(
        f"vocabulary: {tok.src_vocab_size:,} {vocab}; wrote {data_dir} in {manifest.seconds:.1f}s"
    )
