"""`nmtkit score` (forced decoding) on the tiny trained model.

The invariant a user relies on: the score of a translation equals what beam search reported
for it when it produced that translation itself (log_prob and the length-normalised score),
for one model and for an ensemble; it does not depend on the batch; and the command writes
exactly one line per pair, refusing files of different lengths before writing anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nmtkit.errors import UserError
from nmtkit.score import Scorer
from nmtkit.translate import DecodeOptions, Translator
from tests.conftest import one_line, run_cli, write_lines


@pytest.fixture(scope="module")
def scorer(translator: Translator) -> Scorer:
    return Scorer(translator)


def nbest(translator: Translator, sources: list[str], **options) -> list:
    # score uses the whole vocabulary: its equality holds with beam search's log-probs there
    options = {"beam_size": 3, "nbest": 3, "shortlist": False, **options}
    return translator.translate(sources, DecodeOptions(**options))


def test_score_equals_what_beam_search_reported(
    scorer: Scorer, translator: Translator, sources: list[str]
) -> None:
    """Every n-best hypothesis, scored from its ids, gets beam search's own log_prob and
    score (the same length penalty)."""
    results = nbest(translator, sources, alpha=0.6)
    pairs = [(r.source, h) for r in results for h in r.hyps]
    src_ids = translator.src_tokenizer.encode([src for src, _ in pairs])
    found = scorer.score_ids(src_ids, [h.tokens for _, h in pairs], batch_tokens=200)
    assert len(pairs) > 2 * len(sources)
    for (_, hyp), log_probs in zip(pairs, found, strict=True):
        assert len(log_probs) == len(hyp.tokens) + 1  # EOS included
        assert sum(log_probs) == pytest.approx(hyp.log_prob, abs=1e-4)
        assert all(p <= 0 for p in log_probs)


def test_text_scores_equal_beam_scores_when_the_pieces_match(
    scorer: Scorer, translator: Translator, sources: list[str]
) -> None:
    """Scoring the detokenized text (the command's input) gives beam search's log_prob and
    score wherever SentencePiece re-splits the text into the pieces the model produced."""
    alpha = translator.defaults.alpha
    results = nbest(translator, sources, nbest=1, alpha=alpha)
    texts = [r.texts[0] for r in results]
    scores = scorer.score(sources, texts)
    resplit = translator.tgt_tokenizer.encode(texts)
    same = [i for i, r in enumerate(results) if resplit[i] == r.hyps[0].tokens]
    assert len(same) >= len(sources) // 2
    for i in same:
        hyp, got = results[i].hyps[0], scores[i]
        assert got.line == i + 1
        assert got.log_prob == pytest.approx(hyp.log_prob, abs=1e-4)
        assert got.score == pytest.approx(hyp.score, abs=1e-4)
        assert got.tokens == len(hyp.tokens) + 1
        assert got.pieces[-1] == "</s>" and len(got.pieces) == got.tokens


def test_an_ensemble_scores_as_it_decodes(trained: Path, sources: list[str]) -> None:
    steps = sorted((trained / "run" / "checkpoints").glob("step-*.pt"))
    assert len(steps) == 2
    ensemble = Translator.load(steps, device="cpu", precision="fp32")
    results = nbest(ensemble, sources[:12])
    pairs = [(r.source, h) for r in results for h in r.hyps]
    found = Scorer(ensemble).score_ids(
        ensemble.src_tokenizer.encode([src for src, _ in pairs]),
        [h.tokens for _, h in pairs],
        batch_tokens=300,
    )
    for (_, hyp), log_probs in zip(pairs, found, strict=True):
        assert sum(log_probs) == pytest.approx(hyp.log_prob, abs=1e-4)


def test_scores_do_not_depend_on_the_batch(
    scorer: Scorer, translator: Translator, sources: list[str]
) -> None:
    targets = [r.texts[0] for r in nbest(translator, sources, nbest=1)]
    targets = targets[1:] + targets[:1]  # wrong translations score too
    alone = scorer.score(sources, targets, batch_tokens=1)
    together = scorer.score(sources, targets, batch_tokens=10_000)
    assert [s.piece_log_probs for s in alone] == [
        pytest.approx(s.piece_log_probs, abs=1e-5) for s in together
    ]


def test_empty_lines_are_scored(scorer: Scorer) -> None:
    empty, text = scorer.score(["", "the dog sees the cat ."], ["die katze .", ""])
    assert empty.tokens > 1 and math.isfinite(empty.log_prob)
    assert text.tokens == 1 and text.pieces == ["</s>"] and text.log_prob < 0


def test_lists_of_different_lengths_are_refused(scorer: Scorer) -> None:
    with pytest.raises(UserError, match="2 sources and 1 translations"):
        scorer.score(["a", "b"], ["x"])


def test_a_long_source_is_truncated_with_a_warning(scorer: Scorer) -> None:
    warnings: list[str] = []
    long = " ".join(["the old man sees the dog ."] * 20)
    (result,) = scorer.score_stream([(long, "der hund .")], max_src_tokens=8, warn=warnings.append)
    assert result.truncated and len(warnings) == 1 and "line 1" in warnings[0]


# ------------------------------------------------------------------------------ the command


def test_bf16_scores_are_the_fp32_scores_within_rounding(
    trained: Path, translator: Translator, sources: list[str]
) -> None:
    """In bf16 (`--precision bf16`: a bf16 copy of the model) forced decoding agrees with
    fp32's beam search to bf16's rounding (a few thousandths of the log-probability)."""
    bf16 = Translator.load(trained / "run", device="cpu", precision="bf16")
    results = nbest(translator, sources[:12])
    pairs = [(r.source, h) for r in results for h in r.hyps]
    src_ids = translator.src_tokenizer.encode([src for src, _ in pairs])
    found = Scorer(bf16).score_ids(src_ids, [h.tokens for _, h in pairs], batch_tokens=300)
    for (_, hyp), log_probs in zip(pairs, found, strict=True):
        assert sum(log_probs) == pytest.approx(hyp.log_prob, rel=0.02, abs=0.02)


@pytest.fixture
def files(trained: Path, tmp_path: Path, sources: list[str]) -> tuple[Path, Path]:
    targets = (trained / "test.de").read_text(encoding="utf-8").splitlines()
    src = write_lines(tmp_path / "src.en", [*sources[:9], ""])
    tgt = write_lines(tmp_path / "tgt.de", [*targets[:9], "das ist ."])
    return src, tgt


def test_the_command_prints_one_line_per_pair(
    trained: Path, files: tuple[Path, Path], scorer: Scorer
) -> None:
    src, tgt = files
    args = ("score", "-m", trained / "run", "--src", src, "--tgt", tgt, "--device", "cpu")
    result = run_cli(*args, "--precision", "fp32")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == 10 and all(len(row) == 3 for row in rows)
    expected = scorer.score(
        src.read_text(encoding="utf-8").splitlines(), tgt.read_text(encoding="utf-8").splitlines()
    )
    for row, want in zip(rows, expected, strict=True):
        assert float(row[0]) == pytest.approx(want.log_prob, abs=1e-3)
        assert float(row[1]) == pytest.approx(want.per_token, abs=1e-3)
        assert int(row[2]) == want.tokens


def test_the_command_writes_jsonl_with_pieces_to_a_file(
    trained: Path, files: tuple[Path, Path], tmp_path: Path
) -> None:
    src, tgt = files
    out = tmp_path / "out" / "scores.jsonl"
    args = ("score", "-m", trained / "run", "--src", src, "--tgt", tgt, "-f", "jsonl")
    result = run_cli(*args, "--pieces", "-o", out)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, 11))
    for r in records:
        assert len(r["pieces"]) == len(r["piece_log_probs"]) == r["tokens"]
        assert sum(r["piece_log_probs"]) == pytest.approx(r["log_prob"], abs=1e-2)
    assert not list(out.parent.glob("*.partial"))


def test_files_of_different_lengths_are_an_error_before_any_output(
    trained: Path, files: tuple[Path, Path], tmp_path: Path
) -> None:
    src, _ = files
    short = write_lines(tmp_path / "short.de", ["ein satz ."] * 3)
    out = tmp_path / "scores.tsv"
    result = run_cli("score", "-m", trained / "run", "--src", src, "--tgt", short, "-o", out)
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert f"{src} has 10 lines" in message and f"{short} has 3" in message
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_pieces_need_jsonl(trained: Path, files: tuple[Path, Path]) -> None:
    src, tgt = files
    result = run_cli("score", "-m", trained / "run", "--src", src, "--tgt", tgt, "--pieces")
    assert result.exit_code == 2 and "--pieces needs --format jsonl" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-f", "text"), "--format must be one of tsv, jsonl, got 'text'"),
        (("--batch-tokens", "0"), "--batch-tokens must be at least 1"),
        (("--max-src-tokens", "1"), "--max-src-tokens must be at least 2"),
    ],
)
def test_bad_options_are_errors_before_any_output(
    trained: Path, files: tuple[Path, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    src, tgt = files
    out = tmp_path / "scores.tsv"
    result = run_cli("score", "-m", trained / "run", "--src", src, "--tgt", tgt, "-o", out, *args)
    assert result.exit_code == 2 and message in one_line(result.stderr)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_a_missing_file_is_named(trained: Path, files: tuple[Path, Path], tmp_path: Path) -> None:
    _, tgt = files
    missing = tmp_path / "nothing.en"
    result = run_cli("score", "-m", trained / "run", "--src", missing, "--tgt", tgt)
    assert result.exit_code == 2
    assert f"--src {missing} does not exist" in one_line(result.stderr)
