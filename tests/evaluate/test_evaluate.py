"""`nmtkit evaluate`: sacrebleu scores overall and by length bucket, intervals, significance,
and the table, JSON and plot; every number checked against sacrebleu on the same sentences."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sacrebleu
from hypothesis import given
from hypothesis import strategies as st
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmtkit.errors import UserError
from nmtkit.evaluate.plot import plot_report
from nmtkit.evaluate.report import (
    DEFAULT_EDGES,
    LengthReport,
    bucket_index,
    build_report,
    check_edges,
    make_buckets,
    parse_edges,
)
from nmtkit.evaluate.run import name_systems
from nmtkit.evaluate.scores import score_corpus
from nmtkit.evaluate.tables import report_to_dict
from nmtkit.recipe import EvaluateConfig
from tests.conftest import one_line, run_cli, write_lines

# 80 made-up words: few repeats within a sentence, which keeps TER's shift search fast.
WORDS = [
    a + b
    for a in "ka lo mi nu pe ri so tu".split()
    for b in "ba de fi go hu ja ke li mo na".split()
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sentences(lengths: list[int], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(n)) for n in lengths]


def corrupt(lines: list[str], rate: float, seed: int) -> list[str]:
    """A 'system output': each word replaced by a random one with probability `rate`."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) if rng.random() < rate else w for w in line.split())
        for line in lines
    ]


# Lengths that hit every edge of [10, 20, 30, 40, 50] and leave bucket 41-50 empty.
LENGTHS = [0, 1, 5, 10, 11, 15, 20, 21, 25, 30, 31, 35, 40, 51, 60] * 4
REFS = sentences(LENGTHS, seed=1)
WEAK = corrupt(REFS, 0.5, seed=2)
STRONG = corrupt(REFS, 0.1, seed=3)


@pytest.fixture(scope="module")
def report() -> LengthReport:
    return build_report({"weak": WEAK, "strong": STRONG}, REFS, by="reference", n_bootstrap=200)


# ----------------------------------------------------------------------------- length buckets


@pytest.mark.parametrize(
    ("words", "label"),
    [(0, "≤10"), (10, "≤10"), (11, "11-20"), (20, "11-20"), (21, "21-30"), (50, "41-50"),
     (51, "51+"), (500, "51+")],
)  # fmt: skip
def test_bucket_of_a_length_at_the_edges(words: int, label: str) -> None:
    assert make_buckets(DEFAULT_EDGES)[bucket_index(DEFAULT_EDGES, words)].label == label


def test_bucket_labels_and_ranges() -> None:
    assert [b.label for b in make_buckets([10, 20])] == ["≤10", "11-20", "21+"]
    assert [b.label for b in make_buckets([10, 11])] == ["≤10", "11", "12+"]
    assert [(b.min_words, b.max_words) for b in make_buckets([3])] == [(0, 3), (4, None)]


@given(st.sets(st.integers(1, 200), min_size=1, max_size=8), st.integers(0, 300))
def test_a_length_falls_in_the_bucket_whose_range_holds_it(edges: set[int], words: int) -> None:
    ordered = sorted(edges)
    bucket = make_buckets(ordered)[bucket_index(ordered, words)]
    assert bucket.min_words <= words and (bucket.max_words is None or words <= bucket.max_words)


def test_edges_follow_the_recipe_rule() -> None:
    assert tuple(EvaluateConfig().buckets) == DEFAULT_EDGES
    assert parse_edges("5,15,25") == (5, 15, 25)
    for bad in ([20, 10], [10, 10]):
        with pytest.raises(UserError, match="strictly increasing"):
            check_edges(bad)
    with pytest.raises(UserError, match="greater than or equal to 1"):
        check_edges([0, 10])
    with pytest.raises(UserError, match=r"e\.g\. 10,20,30,40,50"):
        parse_edges("10,twenty")


# ---------------------------------------------------------------------------------- scores


def test_overall_scores_equal_sacrebleu(report: LengthReport) -> None:
    for name, hyps in (("weak", WEAK), ("strong", STRONG)):
        scores = report.overall[name]
        assert scores["bleu"].score == pytest.approx(sacrebleu.corpus_bleu(hyps, [REFS]).score)
        assert scores["chrf"].score == pytest.approx(sacrebleu.corpus_chrf(hyps, [REFS]).score)
        assert scores["ter"].score == pytest.approx(sacrebleu.corpus_ter(hyps, [REFS]).score)
    assert report.sentences == len(REFS)
    assert report.signatures["bleu"].startswith("nrefs:1|bs:200|seed:12345|case:mixed")
    assert set(report.signatures) == {"bleu", "chrf", "ter"}


def test_training_validation_scores_the_same_way() -> None:
    scores = score_corpus(STRONG, REFS)
    assert scores.bleu == pytest.approx(sacrebleu.corpus_bleu(STRONG, [REFS]).score)
    assert scores.chrf == pytest.approx(sacrebleu.corpus_chrf(STRONG, [REFS]).score)


def test_each_bucket_scores_exactly_its_sentences(report: LengthReport) -> None:
    for i, bucket in enumerate(report.buckets):
        rows = [r for r, n in enumerate(LENGTHS) if bucket_index(DEFAULT_EDGES, n) == i]
        assert bucket.sentences == len(rows)
        if not rows:
            continue
        assert bucket.scores is not None
        refs = [REFS[r] for r in rows]
        for name, system in (("weak", WEAK), ("strong", STRONG)):
            hyps = [system[r] for r in rows]
            bleu, chrf = bucket.scores[name]["bleu"], bucket.scores[name]["chrf"]
            assert bleu.score == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
            assert chrf.score == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert [b.sentences for b in report.buckets] == [16, 12, 12, 12, 0, 8]


def test_an_empty_bucket_has_no_scores(report: LengthReport) -> None:
    empty = report.buckets[4]
    assert (empty.bucket.label, empty.sentences, empty.scores) == ("41-50", 0, None)
    assert report_to_dict(report)["buckets"][4]["scores"] == {"weak": None, "strong": None}


def test_buckets_by_source_or_by_reference_length() -> None:
    srcs = sentences([3] * 30 + [25] * 30, seed=4)  # source lengths differ from the references'
    refs = sentences([25] * 30 + [3] * 30, seed=5)
    hyps = corrupt(refs, 0.3, seed=6)
    by_src = build_report({"h": hyps}, refs, srcs, by="source", n_bootstrap=20, ter=False)
    by_ref = build_report({"h": hyps}, refs, srcs, by="reference", n_bootstrap=20, ter=False)
    short_src, short_ref = by_src.buckets[0].scores, by_ref.buckets[0].scores
    assert short_src is not None and short_ref is not None
    first, last = slice(0, 30), slice(30, 60)
    assert short_src["h"]["bleu"].score == pytest.approx(
        sacrebleu.corpus_bleu(hyps[first], [refs[first]]).score
    )
    assert short_ref["h"]["bleu"].score == pytest.approx(
        sacrebleu.corpus_bleu(hyps[last], [refs[last]]).score
    )


# ---------------------------------------------------------------------- intervals, significance


def test_intervals_and_p_values_equal_sacrebleu_paired_test(report: LengthReport) -> None:
    bucket = report.buckets[1]  # 11-20 words
    assert bucket.scores is not None
    rows = [r for r, n in enumerate(LENGTHS) if 11 <= n <= 20]
    refs = [REFS[r] for r in rows]
    named = [("weak", [WEAK[r] for r in rows]), ("strong", [STRONG[r] for r in rows])]
    _, expected = PairedTest(
        named, {"BLEU": BLEU(), "chrF": CHRF()}, [refs], test_type="bs", n_samples=200
    )()
    for key, column in (("bleu", "BLEU"), ("chrf", "chrF2")):
        for i, name in enumerate(("weak", "strong")):
            ours, theirs = bucket.scores[name][key], expected[column][i]
            assert ours.score == pytest.approx(theirs.score)
            assert ours.mean == pytest.approx(theirs.mean, rel=1e-5)
            assert ours.half_width == pytest.approx(theirs.ci, rel=1e-4)
            assert ours.p_value == theirs.p_value  # None for the baseline


def test_intervals_are_ordered_and_hold_the_score(report: LengthReport) -> None:
    scores = [report.overall] + [b.scores for b in report.buckets if b.scores is not None]
    for by_system in scores:
        for by_metric in by_system.values():
            for score in by_metric.values():
                assert score.low <= score.high
    for name in report.systems:
        for key in ("bleu", "chrf", "ter"):
            score = report.overall[name][key]
            assert score.low <= score.score <= score.high


def test_identical_systems_do_not_differ_a_better_one_does() -> None:
    report = build_report(
        {"weak": WEAK, "copy": list(WEAK), "strong": STRONG},
        REFS,
        by="reference",
        n_bootstrap=200,
        ter=False,
    )
    assert report.overall["weak"]["bleu"].significant is None  # the baseline
    copy = [report.overall["copy"]] + [b.scores["copy"] for b in report.buckets if b.scores]
    assert all(s.p_value == 1.0 and not s.significant for m in copy for s in m.values())
    strong = report.overall["strong"]
    assert strong["bleu"].score > report.overall["weak"]["bleu"].score + 20
    assert strong["bleu"].significant and strong["chrf"].significant
    assert strong["bleu"].p_value == pytest.approx(1 / 201)


def test_reports_are_deterministic(report: LengthReport) -> None:
    again = build_report({"weak": WEAK, "strong": STRONG}, REFS, by="reference", n_bootstrap=200)
    assert again == report
    assert report.seed == 12345


def test_library_input_errors() -> None:
    with pytest.raises(UserError, match="--src"):
        build_report({"h": WEAK}, REFS, by="source")
    with pytest.raises(UserError, match=f"there are {len(REFS)} references but system 'h' has 3"):
        build_report({"h": WEAK[:3]}, REFS, by="reference")
    with pytest.raises(UserError, match="the source has 2"):
        build_report({"h": WEAK}, REFS, REFS[:2], by="source")


def test_system_names() -> None:
    assert name_systems(["out/base.de", "new=out/x.de"]) == {
        "base": Path("out/base.de"),
        "new": Path("out/x.de"),
    }
    with pytest.raises(UserError, match="two systems are named 'base'"):
        name_systems(["a/base.de", "b/base.de"])


# ------------------------------------------------------------------------------ JSON and plot


def test_json_holds_every_number(report: LengthReport) -> None:
    data = json.loads(json.dumps(report_to_dict(report)))
    assert data["by"] == "reference" and data["edges"] == list(DEFAULT_EDGES)
    assert data["systems"] == ["weak", "strong"] and data["baseline"] == "weak"
    assert data["n_bootstrap"] == 200 and data["seed"] == 12345
    assert data["signatures"] == report.signatures
    strong = report.overall["strong"]["bleu"]
    assert data["overall"]["strong"]["bleu"] == {
        "score": strong.score,
        "mean": strong.mean,
        "ci95": [strong.low, strong.high],
        "p_value": strong.p_value,
        "significant": True,
    }
    assert data["overall"]["weak"]["ter"]["p_value"] is None
    for entry, bucket in zip(data["buckets"], report.buckets, strict=True):
        assert entry["label"] == bucket.bucket.label
        assert (entry["min_words"], entry["max_words"]) == (
            bucket.bucket.min_words,
            bucket.bucket.max_words,
        )
        assert entry["sentences"] == bucket.sentences
        if bucket.scores is not None:
            assert (
                entry["scores"]["strong"]["chrf"]["score"] == bucket.scores["strong"]["chrf"].score
            )


def test_plot_is_a_png_and_other_formats_by_name(report: LengthReport, tmp_path: Path) -> None:
    plot_report(report, tmp_path / "bleu.png")
    assert (tmp_path / "bleu.png").read_bytes().startswith(PNG_MAGIC)
    plot_report(report, tmp_path / "chrf.svg", metric="chrf")
    assert b"<svg" in (tmp_path / "chrf.svg").read_bytes()[:500]
    with pytest.raises(UserError, match=r"\.png, \.svg or \.pdf"):
        plot_report(report, tmp_path / "bleu.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bleu.png", "chrf.svg"]


# ---------------------------------------------------------------------------------- the CLI


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    srcs = sentences([n + 2 for n in LENGTHS], seed=7)
    return {
        "src": write_lines(tmp_path / "test.en", srcs),
        "ref": write_lines(tmp_path / "test.de", REFS),
        "weak": write_lines(tmp_path / "weak.de", WEAK),
        "strong": write_lines(tmp_path / "strong.de", STRONG),
    }


def test_cli_prints_tables_and_writes_json_and_plot(files: dict, tmp_path: Path) -> None:
    json_path, plot_path = tmp_path / "out" / "report.json", tmp_path / "out" / "bleu.png"
    result = run_cli(
        "evaluate", "--hyp", files["weak"], "--compare", f"better={files['strong']}",
        "--ref", files["ref"], "--src", files["src"], "--buckets", "10,20,40",
        "--json", json_path, "--plot", plot_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    table = one_line(result.stdout)
    headings = ["BLEU by source length", "chrF by source length", "TER", "p"]
    signature = "BLEU signature: nrefs:1|bs:1000|seed:12345"
    for text in ["weak", "better", "≤10", "11-20", "21-40", "41+", *headings, signature]:
        assert text in table
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["systems"] == ["weak", "better"] and data["by"] == "source"
    assert data["edges"] == [10, 20, 40]
    assert [b["sentences"] for b in data["buckets"]] == [12, 12, 24, 12]  # by source
    assert plot_path.read_bytes().startswith(PNG_MAGIC)
    assert "wrote" in result.stderr


def test_cli_buckets_by_reference_without_sources(files: dict) -> None:
    result = run_cli("evaluate", "--hyp", f"w={files['weak']}", "--ref", files["ref"])
    assert result.exit_code == 0, result.stderr
    assert "BLEU by reference length" in one_line(result.stdout)
    assert "51+" in result.stdout and "—" in result.stdout  # 41-50 is empty


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "source"], "need the source sentences (--src FILE)"),
        (["--buckets", "20,10"], "strictly increasing"),
        (["--buckets", "10,,20"], "bad length bucket edges"),
        (["--by", "sideways"], "by 'source' or 'reference', not 'sideways'"),
        (["--plot", "bleu.jpg"], "use a .png, .svg or .pdf file"),
    ],
)
def test_cli_option_errors(files: dict, args: list[str], message: str) -> None:
    result = run_cli("evaluate", "--hyp", files["weak"], "--ref", files["ref"], *args)
    assert result.exit_code == 2
    assert message in one_line(result.stderr) and "Traceback" not in result.stderr


def test_cli_mismatched_line_counts(files: dict, tmp_path: Path) -> None:
    short = write_lines(tmp_path / "short.de", WEAK[:7])
    empty = write_lines(tmp_path / "empty.de", [])
    for args, counts in (
        (["--hyp", short], [f"{short} has 7", f"{files['ref']} has {len(REFS)}"]),
        (["--hyp", files["weak"], "--compare", f"x={short}"], [f"{short} has 7"]),
        (["--hyp", files["weak"], "--src", short], [f"{short} has 7"]),
        (["--hyp", empty], [f"{empty} has 0"]),
    ):
        result = run_cli("evaluate", *args, "--ref", files["ref"])
        assert result.exit_code == 2, result.stdout
        message = one_line(result.stderr)
        assert all(count in message for count in counts), message
        assert "Traceback" not in result.stderr


def test_cli_missing_and_undecodable_files(files: dict, tmp_path: Path) -> None:
    missing = tmp_path / "nope.de"
    result = run_cli("evaluate", "--hyp", missing, "--ref", files["ref"])
    assert result.exit_code == 2 and str(missing) in one_line(result.stderr)
    latin1 = tmp_path / "latin1.de"
    latin1.write_bytes(b"ok\ngr\xfcn\n")
    result = run_cli("evaluate", "--hyp", files["weak"], "--ref", latin1)
    assert result.exit_code == 2
    assert f"{latin1}, line 2: invalid UTF-8" in one_line(result.stderr)


def test_cli_help_has_examples() -> None:
    assert "evaluate" in run_cli("--help").stdout
    text = one_line(run_cli("evaluate", "--help").stdout)
    assert "nmtkit evaluate --hyp out.de --ref test.de" in text
    assert "--compare" in text and "--buckets" in text
