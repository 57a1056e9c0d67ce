"""Stream parallel (src, tgt) pairs from a recipe's `data.source`: `synthetic`, `files`, `tsv`,
`jsonl` or `hf` (README, "Corpus sources"), each a small reader behind `iter_pairs(data, split)`.

Files are read as bytes and decoded line by line, so invalid UTF-8 and NUL bytes are reported
with file and line number; CRLF line ends are accepted. Every text is normalised to one line
(inner newlines become spaces, outer whitespace is stripped), so one pair is one line later on.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

from nmtkit.errors import UserError
from nmtkit.recipe import DataConfig, HfSource

Pair = tuple[str, str]


class SourceError(UserError):
    """A corpus that cannot be read as parallel text."""


def available_splits(data: DataConfig) -> list[str]:
    """The splits this source provides, in the order train, valid, test."""
    source = data.source
    if source.synthetic is not None:
        cfg = source.synthetic
        counts = {"train": cfg.pairs, "valid": cfg.valid, "test": cfg.test}
        return [split for split, n in counts.items() if n > 0]
    section = source.files or source.tsv or source.jsonl or (source.hf and source.hf.splits)
    return [s for s in ("train", "valid", "test") if getattr(section, s) is not None]


def iter_pairs(data: DataConfig, split: str) -> Iterator[Pair]:
    """Stream the (src, tgt) pairs of one split, each side normalised to one stripped line."""
    source = data.source
    if source.synthetic is not None:
        from nmtkit.data.synthetic import iter_synthetic

        cfg = source.synthetic
        return iter_synthetic(split, pairs=cfg.pairs, valid=cfg.valid, test=cfg.test, seed=cfg.seed)
    if source.files is not None:
        files = getattr(source.files, split)
        return read_parallel_files(files.src, files.tgt)
    if source.tsv is not None:
        return read_tsv(getattr(source.tsv, split))
    if source.jsonl is not None:
        keys = (source.jsonl.src_key or data.src_lang, source.jsonl.tgt_key or data.tgt_lang)
        return read_jsonl(getattr(source.jsonl, split), keys)
    assert source.hf is not None
    return read_hf(source.hf, split, data.src_lang, data.tgt_lang)


def describe_split(data: DataConfig, split: str) -> str:
    """Where one split's pairs come from, for messages: its file(s), or the dataset and split."""
    source = data.source
    if source.files is not None:
        files = getattr(source.files, split)
        return f"{files.src} and {files.tgt}"
    if source.tsv is not None or source.jsonl is not None:
        return str(getattr(source.tsv or source.jsonl, split))
    if source.hf is not None:
        return f"{source.hf.name} split {getattr(source.hf.splits, split)!r}"
    return "the synthetic generator"


def input_files(data: DataConfig) -> list[Path]:
    """The local files a source reads (their size and mtime decide whether prepare reruns)."""
    source = data.source
    found: list[Path] = []
    for split in available_splits(data):
        if source.files is not None:
            files = getattr(source.files, split)
            found += [files.src, files.tgt]
        elif source.tsv is not None or source.jsonl is not None:
            found.append(getattr(source.tsv or source.jsonl, split))
    if source.hf is not None:
        local = Path(source.hf.name)
        if local.is_dir():  # a saved dataset or a repository layout: every file in it
            found += sorted(p for p in local.rglob("*") if p.is_file())
        elif source.hf.data_files:  # local files or globs (hub patterns match nothing here)
            for value in source.hf.data_files.values():
                for pattern in [value] if isinstance(value, str) else value:
                    found += [Path(p) for p in sorted(glob.glob(pattern))] or [Path(pattern)]
    return found


def read_lines(path: Path) -> Iterator[str]:
    """Decoded lines of a UTF-8 text file without their line ends; errors name file and line."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below, after checks
    except FileNotFoundError:
        raise SourceError(f"corpus file {path} does not exist") from None
    except IsADirectoryError:
        raise SourceError(f"corpus file {path} is a directory, not a text file") from None
    except OSError as exc:
        raise SourceError(f"cannot read corpus file {path}: {exc.strerror}") from None
    with handle:
        yield from decode_lines(handle, str(path))


def decode_lines(stream: Iterable[bytes], name: str, *, allow_nul: bool = False) -> Iterator[str]:
    """Lines of a byte stream (a file, stdin) decoded as UTF-8, without their line ends (LF or
    CRLF). Invalid UTF-8, and NUL bytes unless `allow_nul`, are errors naming `name` and the
    line: the one definition of reading text lines, for corpora and for translation input."""
    for number, raw in enumerate(stream, start=1):
        if not allow_nul and b"\x00" in raw:
            raise SourceError(f"{name}, line {number}: contains a NUL byte; is this a binary file?")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{name}, line {number}: invalid UTF-8 at byte {exc.start} of the line "
                f"({exc.reason}); convert the file to UTF-8, e.g. with iconv"
            ) from None
        yield line.rstrip("\r\n")


def one_line(text: str) -> str:
    """Inner line breaks become spaces; outer whitespace goes."""
    if "\n" in text or "\r" in text or "\u2028" in text or "\u2029" in text:
        text = " ".join(text.replace("\u2028", "\n").replace("\u2029", "\n").splitlines())
    return text.strip()


def read_parallel_files(src_path: Path, tgt_path: Path) -> Iterator[Pair]:
    """Pairs from two aligned files; different line counts are an error naming both counts."""
    lines = zip_longest(read_lines(src_path), read_lines(tgt_path))
    for count, (src, tgt) in enumerate(lines):
        if src is None or tgt is None:  # one file ended: count the rest of the other
            rest = 1 + sum(1 for _ in lines)
            n_src, n_tgt = (count, count + rest) if src is None else (count + rest, count)
            raise SourceError(
                f"parallel files have different line counts: {src_path} has {n_src} lines, "
                f"{tgt_path} has {n_tgt}; line i of one must translate line i of the other"
            )
        yield one_line(src), one_line(tgt)


def read_tsv(path: Path) -> Iterator[Pair]:
    """Pairs from `src<TAB>tgt` lines; a line without exactly one tab is an error."""
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise SourceError(
                f"{path}, line {number}: expected 2 tab-separated fields (src<TAB>tgt), "
                f"found {len(fields)}"
            )
        yield one_line(fields[0]), one_line(fields[1])


def read_jsonl(path: Path, keys: tuple[str, str]) -> Iterator[Pair]:
    """Pairs from JSON lines with flat keys or a `translation` dict; blank lines are skipped."""
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}, line {number}: invalid JSON ({exc.msg})") from None
        try:
            yield pair_from_record(record, keys)
        except SourceError as exc:
            raise SourceError(f"{path}, line {number}: {exc}") from None


def pair_from_record(record: Any, keys: tuple[str, str]) -> Pair:
    """(src, tgt) from `{src_key: .., tgt_key: ..}` or `{"translation": {src_key: .., ..}}`."""
    if not isinstance(record, dict):
        raise SourceError(f"expected a JSON object, found {type(record).__name__}")
    if keys[0] not in record and isinstance(record.get("translation"), dict):
        record = record["translation"]
    missing = [key for key in keys if key not in record]
    if missing:
        raise SourceError(
            f"no key {missing[0]!r} (keys present: {', '.join(map(str, record)) or 'none'}); "
            "set data.source.*.src_key/tgt_key or data.src_lang/tgt_lang"
        )
    src, tgt = (record[key] for key in keys)
    for key, value in zip(keys, (src, tgt), strict=True):
        if not isinstance(value, str):
            raise SourceError(f"value of {key!r} is {type(value).__name__}, not a string")
    return one_line(src), one_line(tgt)


def read_hf(cfg: HfSource, split: str, src_lang: str, tgt_lang: str) -> Iterator[Pair]:
    """Pairs from a Hugging Face dataset split, read in batches from its Arrow table."""
    hf_split = getattr(cfg.splits, split)
    dataset = load_hf_split(cfg, hf_split)
    columns = list(dataset.column_names)
    keys = (cfg.src_key or src_lang, cfg.tgt_key or tgt_lang)
    if not set(keys) <= set(columns) and "translation" in columns:
        key_columns = ["translation"]
    else:
        key_columns = [k for k in dict.fromkeys(keys) if k in columns] or columns
    row = 0
    for batch in dataset.iter(batch_size=1000):
        for values in zip(*(batch[c] for c in key_columns), strict=True):
            row += 1
            try:
                yield pair_from_record(dict(zip(key_columns, values, strict=True)), keys)
            except SourceError as exc:
                raise SourceError(f"{cfg.name} split {hf_split!r}, row {row}: {exc}") from None


def load_hf_split(cfg: HfSource, hf_split: str) -> Any:
    """`datasets.load_from_disk` for a saved folder, else `datasets.load_dataset`."""
    import datasets

    where = f"Hugging Face dataset {cfg.name!r}"
    where += f" (config {cfg.config!r})" if cfg.config else ""
    try:
        local = Path(cfg.name)
        markers = ("dataset_dict.json", "state.json")  # what save_to_disk writes
        if local.is_dir() and any((local / m).exists() for m in markers):
            loaded = datasets.load_from_disk(str(local))
            return loaded[hf_split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return datasets.load_dataset(
            cfg.name, cfg.config, split=hf_split, revision=cfg.revision, data_files=cfg.data_files
        )
    except ConnectionError as exc:
        raise SourceError(
            f"{where}: the Hugging Face hub is unreachable ({_first_line(exc)}). On a machine "
            "with internet, `datasets.load_dataset(...).save_to_disk(DIR)` and point "
            "data.source.hf.name at DIR, or export the splits to text/TSV/JSONL files and use a "
            "`files`, `tsv` or `jsonl` source"
        ) from None
    except KeyError:
        raise SourceError(f"{where} has no split {hf_split!r}; set data.source.hf.splits") from None
    except (ValueError, FileNotFoundError) as exc:
        raise SourceError(f"{where}, split {hf_split!r}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def file_stamp(path: Path) -> dict[str, Any]:
    """What identifies a file's version cheaply: resolved path, size and modification time."""
    try:
        stat = os.stat(path)
    except OSError:
        return {"path": str(path), "missing": True}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
