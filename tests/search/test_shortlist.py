"""Decoding with a vocabulary shortlist (`--shortlist`) on the tiny trained model.

Invariants: a shortlist of the whole vocabulary changes nothing (tokens and scores); each
sentence produces only pieces of its own shortlist, so the output still does not depend on the
batch; beam 1 still equals greedy; training stores the table in the checkpoint, and a
checkpoint without one is a clear error.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nmtkit.checkpoint import Checkpoint
from nmtkit.data.lexical import TOP_K
from nmtkit.translate import DecodeOptions, Translator
from tests.conftest import one_line, run_cli, write_lines


def run(translator: Translator, lines: list[str], **options) -> list:
    return translator.translate(lines, DecodeOptions(**options))


def test_training_stores_the_lexical_table(trained: Path, translator: Translator) -> None:
    checkpoint = Checkpoint.read(trained / "run" / "checkpoints" / "best.pt")
    table = checkpoint.lexical
    assert table is not None
    assert table.candidates.shape == (translator.src_tokenizer.vocab_size, TOP_K)
    assert sorted(table.frequent.tolist()) == list(range(translator.tgt_tokenizer.vocab_size))
    assert (table.candidates[4:, 0] >= 4).sum() > 10  # real pieces predict real pieces


@pytest.mark.parametrize("greedy", [False, True])
def test_a_shortlist_of_everything_changes_nothing(
    translator: Translator, sources: list[str], greedy: bool
) -> None:
    options = {"beam_size": 3, "nbest": 1 if greedy else 3, "greedy": greedy}
    plain = run(translator, sources, shortlist=False, **options)
    everything = run(
        translator,
        sources,
        shortlist=True,
        shortlist_k=TOP_K,
        shortlist_frequent=translator.tgt_tokenizer.vocab_size,
        **options,
    )
    for a, b in zip(plain, everything, strict=True):
        assert [h.tokens for h in a.hyps] == [h.tokens for h in b.hyps]
        assert [h.score for h in a.hyps] == pytest.approx([h.score for h in b.hyps], abs=1e-4)


def test_each_sentence_keeps_to_its_own_shortlist(
    translator: Translator, sources: list[str]
) -> None:
    options = {"beam_size": 3, "nbest": 3, "shortlist": True, "shortlist_k": 3,
               "shortlist_frequent": 5}  # fmt: skip
    results = run(translator, sources, **options)
    encoded = translator.src_tokenizer.encode(sources)
    assert translator.lexical is not None
    for result, ids in zip(results, encoded, strict=True):
        allowed = set(translator.lexical.shortlist(ids, 3, 5).tolist())
        for hyp in result.hyps:
            assert set(hyp.tokens) <= allowed
    alone = run(translator, sources, batch_tokens=1, **options)
    assert [[h.tokens for h in r.hyps] for r in alone] == [
        [h.tokens for h in r.hyps] for r in results
    ]
    for a, b in zip(alone, results, strict=True):
        assert [h.score for h in a.hyps] == pytest.approx([h.score for h in b.hyps], abs=1e-4)


def test_beam_one_equals_greedy_with_a_shortlist(
    translator: Translator, sources: list[str]
) -> None:
    options = {"shortlist": True, "shortlist_k": 5, "shortlist_frequent": 10}
    beam = run(translator, sources, beam_size=1, **options)
    greedy = run(translator, sources, greedy=True, **options)
    assert [r.hyps[0].tokens for r in beam] == [r.hyps[0].tokens for r in greedy]


def test_auto_the_default_uses_the_table_where_the_checkpoint_has_one(
    translator: Translator, sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """decode.shortlist: auto (the default) decodes as --shortlist with a table and a target
    vocabulary of at least SHORTLIST_MIN_VOCAB pieces, and as --no-shortlist without a table
    (the next test) or on a small vocabulary (this 48-piece model, until the bound is 0)."""
    from nmtkit import translate as module

    assert translator.tgt_tokenizer.vocab_size < module.SHORTLIST_MIN_VOCAB
    assert not translator.uses_shortlist(DecodeOptions())
    assert translator.uses_shortlist(DecodeOptions(shortlist=True))
    monkeypatch.setattr(module, "SHORTLIST_MIN_VOCAB", 0)
    small = {"beam_size": 3, "nbest": 3, "shortlist_k": 3, "shortlist_frequent": 5}
    assert DecodeOptions().shortlist == "auto" and translator.defaults.shortlist == "auto"
    assert translator.uses_shortlist(DecodeOptions())
    assert not translator.uses_shortlist(DecodeOptions(shortlist=False))
    auto = [[h.tokens for h in r.hyps] for r in run(translator, sources, **small)]
    on = [[h.tokens for h in r.hyps] for r in run(translator, sources, shortlist=True, **small)]
    off = [[h.tokens for h in r.hyps] for r in run(translator, sources, shortlist=False, **small)]
    assert auto == on
    assert off != on  # k 3 / N 5 restricts this model: the default did use the table


def test_the_command_takes_the_shortlist_options(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.en", ["the old man sees the dog .", "", "a cat ."])
    args = ("translate", "-m", trained / "run", "-i", src, "--device", "cpu")
    result = run_cli(*args, "--shortlist", "--shortlist-k", "20", "--shortlist-frequent", "30")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    bad = run_cli(*args, "--shortlist", "--shortlist-k", "500")
    assert bad.exit_code == 2 and "--shortlist-k must be between 1 and 100" in one_line(bad.stderr)


def test_a_checkpoint_without_a_table_is_a_clear_error(trained: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    checkpoint = Checkpoint.read(trained / "run" / "checkpoints" / "best.pt")
    replace(checkpoint, lexical=None, training=None).write(old)
    src = write_lines(tmp_path / "in.en", ["the dog ."])
    result = run_cli("translate", "-m", old, "-i", src, "--shortlist")
    assert result.exit_code == 2
    assert "--shortlist needs the lexical table" in one_line(result.stderr)
    # by default (auto) and with --no-shortlist it translates in the whole vocabulary
    assert run_cli("translate", "-m", old, "-i", src).exit_code == 0
    default = run_cli("translate", "-m", old, "-i", src, "--shortlist-k", "1")
    off = run_cli("translate", "-m", old, "-i", src, "--no-shortlist")
    assert default.exit_code == off.exit_code == 0 and default.stdout == off.stdout
    assert Translator.load(old, device="cpu").uses_shortlist(DecodeOptions()) is False
