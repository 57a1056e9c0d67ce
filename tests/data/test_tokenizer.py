"""SentencePiece training and round trips, with the project's fixed special ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmtkit.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    train_sentencepiece,
)
from nmtkit.errors import UserError
from tests.conftest import toy_pairs, write_lines


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("spm")
    pairs = toy_pairs(500)
    text = write_lines(tmp / "train.txt", [s for p in pairs for s in p])
    return train_sentencepiece(
        [text], tmp / "spm", model_type="unigram", vocab_size=48, input_sentence_size=10_000
    )


def test_special_ids(model_path: Path) -> None:
    tok = Tokenizer.load(model_path)
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert [tok.sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.vocab_size == 48


def test_round_trip(model_path: Path) -> None:
    tok = Tokenizer.load(model_path)
    lines = [s for p in toy_pairs(50, seed=9) for s in p]
    ids = tok.encode(lines, threads=2)
    assert all(PAD_ID not in seq and BOS_ID not in seq and EOS_ID not in seq for seq in ids)
    assert [tok.decode(seq) for seq in ids] == lines
    assert tok.decode([BOS_ID, *ids[0], EOS_ID, PAD_ID]) == lines[0]


def test_unknown_characters_map_to_unk(model_path: Path) -> None:
    tok = Tokenizer.load(model_path)
    assert UNK_ID in tok.encode(["€€€"])[0]


def test_bpe_and_bytes_round_trip(tmp_path: Path, model_path: Path) -> None:
    text = write_lines(tmp_path / "t.txt", [s for p in toy_pairs(300) for s in p])
    bpe = train_sentencepiece([text], tmp_path / "bpe", model_type="bpe", vocab_size=60)
    tok = Tokenizer.load(bpe)
    assert tok.sp.id_to_piece(EOS_ID) == "</s>"
    same = Tokenizer(Tokenizer.load(model_path).model_bytes)
    assert same.sha256 == Tokenizer.load(model_path).sha256


def test_training_is_deterministic(tmp_path: Path) -> None:
    """Same text, same pieces and scores (the model file also records its own path)."""
    text = write_lines(tmp_path / "t.txt", [s for p in toy_pairs(400) for s in p])
    vocabularies = []
    for i in range(2):
        tok = Tokenizer.load(
            train_sentencepiece(
                [text],
                tmp_path / f"m{i}",
                model_type="unigram",
                vocab_size=40,
                threads=2,
                input_sentence_size=300,  # sampling on: the seed must fix the sample
            )
        )
        vocabularies.append(
            [(tok.sp.id_to_piece(i), tok.sp.get_score(i)) for i in range(tok.vocab_size)]
        )
    assert vocabularies[0] == vocabularies[1]


def test_vocabulary_too_large_is_a_user_error(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "t.txt", ["a b c", "b c d"])
    with pytest.raises(UserError, match=r"tokenizer.vocab_size=5000 is too large for this corpus"):
        train_sentencepiece([text], tmp_path / "m", model_type="unigram", vocab_size=5000)
