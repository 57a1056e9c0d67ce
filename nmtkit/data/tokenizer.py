"""SentencePiece subword tokenization: training, loading, encoding and decoding.

The special ids below are fixed across the project and defined here only. Training samples at
most `input_sentence_size` sentences (SentencePiece's own reservoir sampling), so memory stays
bounded however large the corpus is. A trained model is kept as bytes too, so a checkpoint can
carry its tokenizer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from nmtkit.errors import UserError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # PAD is never a real token; BOS starts decoding
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_PIECES = {PAD_ID: PAD, UNK_ID: UNK, BOS_ID: BOS, EOS_ID: EOS}


def default_threads(threads: int = 0) -> int:
    """`threads`, or every core this process may use when 0."""
    if threads > 0:
        return threads
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def train_sentencepiece(
    inputs: Sequence[Path],
    model_prefix: Path,
    *,
    model_type: str,
    vocab_size: int,
    character_coverage: float = 1.0,
    input_sentence_size: int = 200_000,
    threads: int = 0,
    seed: int = 1,
) -> Path:
    """Train a SentencePiece model on text files; returns the `.model` path."""
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            input=",".join(str(p) for p in inputs),
            model_prefix=str(model_prefix),
            model_type=model_type,
            vocab_size=vocab_size,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            num_threads=default_threads(threads),
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=PAD,
            unk_piece=UNK,
            bos_piece=BOS,
            eos_piece=EOS,
            minloglevel=2,  # SentencePiece's own log lines would drown the progress display
        )
    except RuntimeError as exc:
        message = str(exc)
        if "Vocabulary size too high" in message:
            limit = message.rsplit("<=", 1)[-1].strip(" .")
            raise UserError(
                f"tokenizer.vocab_size={vocab_size} is too large for this corpus: SentencePiece "
                f"can make at most {limit} pieces from it. Lower it, e.g. "
                f"--set tokenizer.vocab_size={limit}"
            ) from None
        if "smaller than required_chars" in message:  # "... required_chars. 30 vs 32. ..."
            needed = message.split(" vs ", 1)[-1].split(".", 1)[0].strip()
            raise UserError(
                f"tokenizer.vocab_size={vocab_size} is too small for this corpus: its characters "
                f"and the special pieces need {needed}. Raise it, e.g. "
                f"--set tokenizer.vocab_size={needed}, or lower tokenizer.character_coverage"
            ) from None
        raise
    return model_prefix.with_name(model_prefix.name + ".model")


class Tokenizer:
    """One SentencePiece model: text <-> ids, with the project's special ids."""

    def __init__(self, model_bytes: bytes) -> None:
        self.model_bytes = model_bytes
        self.sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        found = {i: self.sp.id_to_piece(i) for i in SPECIAL_PIECES}
        if found != SPECIAL_PIECES:
            raise UserError(
                f"tokenizer model has special pieces {found}, expected {SPECIAL_PIECES}; "
                "was it trained by nmtkit?"
            )

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        try:
            return cls(Path(path).read_bytes())
        except OSError as exc:
            raise UserError(f"cannot read tokenizer model {path}: {exc.strerror}") from None

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model_bytes).hexdigest()

    def encode(self, lines: Sequence[str], threads: int = 0) -> list[list[int]]:
        """Token ids of each line (no BOS/EOS), using several threads for a batch."""
        return self.sp.encode(list(lines), out_type=int, num_threads=default_threads(threads))

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenized text of one id sequence; special ids are dropped."""
        return self.sp.decode([int(i) for i in ids if i not in SPECIAL_PIECES])


@dataclass(frozen=True)
class TokenizerModels:
    """The SentencePiece model(s) a model was trained with, as bytes, with their hashes: what a
    checkpoint carries, and what `prepare` reuses to fine-tune a model (`train.init_from`)."""

    joint: bool
    src: bytes
    tgt: bytes
    src_sha256: str
    tgt_sha256: str

    @property
    def hashes(self) -> tuple[str, str]:
        return self.src_sha256, self.tgt_sha256

    def load(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers; one object for a joint vocabulary."""
        src = Tokenizer(self.src)
        return src, src if self.joint else Tokenizer(self.tgt)
