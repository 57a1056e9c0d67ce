"""`nmtkit translate` and the search properties on a tiny trained model.

Properties (tested here on a real network, and in test_beam.py on a stub): beam 1 equals
greedy; the output does not depend on the batch size or on the other sentences in the batch;
n-best entries are distinct and sorted; the best hypothesis's score is the model's own score of
that output; any lines (hypothesis: any Unicode, blank lines, any window and batch budget)
give one translation each, in order. Through the CLI: one output line per input line.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nmtkit.checkpoint import Checkpoint
from nmtkit.data.tokenizer import BOS_ID, EOS_ID
from nmtkit.errors import UserError
from nmtkit.search.hypothesis import length_penalty
from nmtkit.translate import DecodeOptions, Translator
from tests.conftest import one_line, run_cli, write_lines


def translate(translator: Translator, lines: list[str], **options) -> list:
    return translator.translate(lines, DecodeOptions(**options))


def test_the_model_is_not_degenerate(translator: Translator, sources: list[str]) -> None:
    """The properties below are tested on a model whose outputs depend on the input."""
    texts = [r.texts[0] for r in translate(translator, sources, beam_size=3)]
    assert len(set(texts)) >= 10


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_beam_one_equals_greedy(translator: Translator, sources: list[str], precision: str) -> None:
    """Also under bf16, whose rounded logits tie often: both searches break a tie towards the
    lower token id (argmax's rule; beam search re-sorts topk's unspecified order)."""
    beam = translate(translator, sources, beam_size=1, precision=precision)
    greedy = translate(translator, sources, greedy=True, precision=precision)
    assert [r.hyps[0].tokens for r in beam] == [r.hyps[0].tokens for r in greedy]
    assert [r.hyps[0].log_prob for r in beam] == pytest.approx(
        [r.hyps[0].log_prob for r in greedy], abs=1e-4
    )


@pytest.mark.parametrize("greedy", [False, True])
def test_output_does_not_depend_on_the_batch(
    translator: Translator, sources: list[str], greedy: bool
) -> None:
    options = {"beam_size": 4, "nbest": 1 if greedy else 3, "greedy": greedy}
    alone = translate(translator, sources, batch_tokens=1, **options)  # one sentence per batch
    together = translate(translator, sources, batch_tokens=100_000, **options)
    reversed_ = translate(translator, sources[::-1], batch_tokens=100_000, **options)[::-1]
    for a, b, c in zip(alone, together, reversed_, strict=True):
        assert (
            [h.tokens for h in a.hyps] == [h.tokens for h in b.hyps] == [h.tokens for h in c.hyps]
        )
        assert [h.score for h in a.hyps] == pytest.approx([h.score for h in b.hyps], abs=1e-4)


# Lines as users have them: any Unicode text (no newline inside a line; no lone surrogates,
# which no UTF-8 input can hold), empty and whitespace-only lines, and real sentences, so that
# some lines do run through the model.
any_lines = st.lists(
    st.one_of(
        st.text(st.characters(exclude_characters="\n", exclude_categories=["Cs"]), max_size=30),
        st.sampled_from(["", " ", "\t  \u3000", "the old man sees the dog", "Katze\r", "the"]),
    ),
    max_size=20,
)
_alone: dict[tuple[str, bool], list[int]] = {}  # (line, greedy) -> tokens, translated alone


@settings(max_examples=30, deadline=None)
@given(lines=any_lines, window=st.integers(1, 25), budget=st.integers(1, 300), greedy=st.booleans())
def test_any_lines_give_one_translation_each_in_order(
    translator: Translator, lines: list[str], window: int, budget: int, greedy: bool
) -> None:
    """Whatever the lines, the window and the batch budget: one result per line, in input
    order, each equal to the line translated on its own; blank lines give empty output."""
    options = DecodeOptions(beam_size=2, greedy=greedy, batch_tokens=budget, max_len_ratio=1.0)
    results = list(translator.translate_stream(lines, options, window=window))
    assert [(r.line, r.source) for r in results] == list(enumerate(lines, start=1))
    for line, result in zip(lines, results, strict=True):
        if (line, greedy) not in _alone:
            (solo,) = translator.translate([line], options.replace(batch_tokens=10_000))
            _alone[line, greedy] = solo.hyps[0].tokens if solo.hyps else []
        assert (result.hyps[0].tokens if result.hyps else []) == _alone[line, greedy]
        if not line.strip():
            assert result.texts == [""]


@settings(max_examples=12, deadline=None)
@given(lines=any_lines, final_newline=st.booleans())
def test_cli_any_input_bytes_give_as_many_lines(
    trained: Path, lines: list[str], final_newline: bool
) -> None:
    data = "\n".join(lines) + ("\n" if final_newline and lines else "")
    result = run_cli("translate", "-m", trained / "run", "--greedy", input=data.encode())
    assert result.exit_code == 0, result.stderr
    expected = data.count("\n") + (not data.endswith("\n") and data != "")
    assert result.stdout.count("\n") == expected


def test_nbest_is_distinct_and_sorted(translator: Translator, sources: list[str]) -> None:
    for result in translate(translator, sources, beam_size=5, nbest=5):
        assert len(result.hyps) == 5
        assert len({tuple(h.tokens) for h in result.hyps}) == 5
        scores = [h.score for h in result.hyps]
        assert scores == sorted(scores, reverse=True)


def test_best_score_is_the_models_own_score(translator: Translator, sources: list[str]) -> None:
    model = translator.models[0]
    alpha = 0.6
    for result in translate(translator, sources[:12], beam_size=4, alpha=alpha):
        best = result.hyps[0]
        src_ids = [*translator.src_tokenizer.encode([result.source])[0], EOS_ID]
        tgt = [*best.tokens, EOS_ID]
        with torch.no_grad():
            logits = model(
                torch.tensor([src_ids]),
                torch.tensor([len(src_ids)]),
                torch.tensor([[BOS_ID, *tgt[:-1]]]),
            )
        own = F.log_softmax(logits[0].float(), -1).gather(1, torch.tensor(tgt).unsqueeze(1)).sum()
        assert best.log_prob == pytest.approx(float(own), abs=1e-3)
        assert best.score == pytest.approx(
            best.log_prob / length_penalty(len(tgt), alpha), abs=1e-3
        )


def test_ensemble_of_one_model_twice_equals_the_model(trained: Path, sources: list[str]) -> None:
    run = trained / "run"
    single = translate(Translator.load(run, device="cpu"), sources, beam_size=3)
    double = translate(Translator.load([run, run], device="cpu"), sources, beam_size=3)
    assert [r.texts for r in single] == [r.texts for r in double]


def test_average_of_two_checkpoints_is_their_mean(trained: Path, tmp_path: Path) -> None:
    steps = sorted((trained / "run" / "checkpoints").glob("step-*.pt"))
    assert len(steps) == 2
    out = tmp_path / "avg.pt"
    result = run_cli("average", *steps, "-o", out)
    assert result.exit_code == 0, result.stderr
    a, b, avg = (Checkpoint.read(p).model for p in (*steps, out))
    for key, value in avg.items():
        if value.is_floating_point():
            assert torch.allclose(value, (a[key] + b[key]) / 2, atol=1e-6), key
    # The averaged checkpoint translates, and joins an ensemble with the originals.
    assert translate(Translator.load([out, steps[0]], device="cpu"), ["the dog"], beam_size=2)


# ------------------------------------------------------------------------------------ CLI


def test_cli_keeps_one_line_per_input_line_in_order(
    trained: Path, translator: Translator, tmp_path: Path
) -> None:
    lines = ["the big dog", "", "a cat sees the house", "   ", "the man", "", "old woman runs"]
    src = tmp_path / "in.en"
    src.write_text("\n".join(lines), encoding="utf-8")  # no newline after the last line
    result = run_cli("translate", "--model", trained / "run", "--input", src, "--beam", "3")
    assert result.exit_code == 0, result.stderr
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out[:-1]) == len(lines)
    expected = {line: translate(translator, [line], beam_size=3)[0].texts[0] for line in lines}
    assert out[:-1] == [expected[line] for line in lines]
    assert all(o == "" for o, line in zip(out, lines, strict=False) if not line.strip())


def test_cli_single_line_through_stdin_and_to_a_file(trained: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nmtkit.cli import app

    out = tmp_path / "sub" / "out.de"
    result = CliRunner().invoke(
        app, ["translate", "--model", str(trained / "run"), "-o", str(out)], input="the dog\n"
    )
    assert result.exit_code == 0, result.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert not list(out.parent.glob("*.partial"))


class _FullDisk:
    """A text file whose writes fail with ENOSPC after `room` characters."""

    def __init__(self, f: io.TextIOBase, room: int) -> None:
        self.f, self.room = f, room

    def write(self, text: str) -> int:
        if len(text) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(text)
        return self.f.write(text)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self.f, name)


@pytest.mark.parametrize("existing", [False, True])
def test_cli_disk_full_while_writing_the_output_is_a_clear_error(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """ENOSPC mid-file: the message training gives for a full disk (one paragraph, exit 2, no
    traceback); no partial file is left and an existing output is untouched."""
    import nmtkit.paths as paths  # where the partial file is opened

    src = write_lines(tmp_path / "in.en", ["the dog", "a cat sees the house", "the man"] * 20)
    out = tmp_path / "out.de"
    if existing:
        out.write_text("old\n", encoding="utf-8")
    real_open = open

    def opening(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        f = real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]
        return _FullDisk(f, room=20) if "w" in mode else f

    monkeypatch.setattr(paths, "open", opening, raising=False)
    result = run_cli("translate", "--model", trained / "run", "-i", src, "-o", out)
    monkeypatch.undo()
    assert result.exit_code == 2, result.stderr
    message = one_line(result.stderr)
    assert f"error: could not write {out}: No space left on device (ENOSPC); " in message
    kept = "the previous version is intact" if existing else "nothing was written"
    assert kept in message and "Free some space" in message and "Traceback" not in message
    assert out.read_text(encoding="utf-8") == "old\n" if existing else not out.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_the_output_is_fsynced_before_the_rename_under_a_name_of_its_own(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partial file is NAME.PID.partial (two runs to one -o never share one), and its bytes
    reach the disk (fsync) before it is renamed to NAME."""
    src = write_lines(tmp_path / "in.en", ["the dog", "the man"])
    out = tmp_path / "out.de"
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
        events.append(("replace", str(a)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    result = run_cli("translate", "--model", trained / "run", "-i", src, "-o", out)
    monkeypatch.undo()
    assert result.exit_code == 0, result.stderr
    partial = str(tmp_path / f"out.de.{os.getpid()}.partial")
    assert events[-2:] == [("fsync", partial), ("replace", partial)]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_cli_empty_input_gives_empty_output(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "empty.en", [])
    result = run_cli("translate", "--model", trained / "run", "--input", src)
    assert result.exit_code == 0 and result.stdout == ""


def test_cli_nbest_tsv_and_jsonl_with_attention(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.en", ["the dog sees a cat", ""])
    model = trained / "run"
    tsv = run_cli("translate", "--model", model, "--input", src, "--format", "tsv", "--nbest", "3")
    assert tsv.exit_code == 0, tsv.stderr
    rows = tsv.stdout.split("\n")[:-1]
    assert len(rows) == 2 and rows[1] == ""
    fields = rows[0].split("\t")
    assert len(fields) == 6
    scores = [float(s) for s in fields[1::2]]
    assert scores == sorted(scores, reverse=True)

    result = run_cli(
        "translate", "--model", model, "--input", src, "--format", "jsonl", "--attention"
    )
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    attn = first["attention"]
    assert len(attn["weights"]) == len(attn["target"])
    assert all(len(row) == len(attn["source"]) for row in attn["weights"])
    assert all(math.isclose(sum(row), 1.0, abs_tol=1e-3) for row in attn["weights"])
    assert first["nbest"][0]["text"] and second == {"line": 2, "source": "", "nbest": []}


def test_cli_truncates_an_overlong_line_with_a_warning(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "long.en", ["the dog " * 100, "the cat"])
    result = run_cli(
        "translate", "--model", trained / "run", "--input", src, "--max-src-tokens", "20"
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "line 1" in one_line(result.stderr) and "truncated to 19" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nowhere"], "model nowhere does not exist"),
        (["--nbest", "4", "--beam", "2"], "--nbest 4 must be between 1 and --beam 2"),
        (["--attention"], "--attention needs --format jsonl"),
        (["--format", "xml"], "--format must be one of text, tsv, jsonl"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--max-len-ratio", "nan"], "--max-len-ratio must be above 0 and at most 10"),
        (["--max-len-ratio", "inf"], "--max-len-ratio must be above 0 and at most 10"),
        (["--max-len-ratio", "0"], "--max-len-ratio must be above 0 and at most 10"),
        (["--precision", "fp8"], "--precision must be auto, fp32, bf16 or fp16"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA GPU"),
    ],
)
def test_cli_errors(trained: Path, tmp_path: Path, args: list[str], message: str) -> None:
    if not torch.cuda.is_available() or "cuda" not in args:
        src = write_lines(tmp_path / "in.en", ["the dog"])
        base = ["translate", "--input", src]
        if "--model" not in args:
            base += ["--model", trained / "run"]
        result = run_cli(*base, *args)
        assert result.exit_code == 2, result.stdout
        assert message in one_line(result.stderr) and "Traceback" not in result.stderr


@pytest.mark.parametrize("greedy", [False, True])
def test_bf16_decodes_as_fp32_but_for_near_ties(
    translator: Translator, sources: list[str], greedy: bool
) -> None:
    """bf16 (a bf16 copy of the model on the CPU) gives fp32's output on nine lines in ten
    of this small, unsure model (its near-ties may flip), with log-probabilities within
    bf16's rounding where the output is the same."""
    options = {"beam_size": 4, "greedy": greedy}
    fp32 = translate(translator, sources, precision="fp32", **options)
    bf16 = translate(translator, sources, precision="bf16", **options)
    same = [(a, b) for a, b in zip(fp32, bf16, strict=True) if a.hyps[0].tokens == b.hyps[0].tokens]
    assert len(same) >= 0.9 * len(sources)
    for a, b in same:
        assert b.hyps[0].log_prob == pytest.approx(a.hyps[0].log_prob, rel=0.02, abs=0.02)


def test_cli_bf16_on_the_cpu_gives_one_line_per_input(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.en", ["the dog", "", "the old man sees the cat"])
    result = run_cli("translate", "--model", trained / "run", "--input", src, "--precision", "bf16")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[1] == ""


def test_cli_invalid_utf8_names_the_line(trained: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad.en"
    src.write_bytes(b"the dog\nthe \xff cat\n")
    out = tmp_path / "out.de"
    result = run_cli("translate", "--model", trained / "run", "--input", src, "--output", out)
    assert result.exit_code == 2
    assert "line 2: invalid UTF-8" in one_line(result.stderr)
    assert not out.exists()  # only the clearly partial file


def test_ensemble_with_a_different_tokenizer_is_refused(trained: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    recipe = yaml.safe_load((other / "recipe.yaml").read_text())
    recipe["run_dir"] = str(other / "run")
    recipe["tokenizer"]["vocab_size"] = 40
    recipe["train"]["max_steps"] = 2
    path = other / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    for command in (["prepare", path], ["train", path, "--restart"]):
        assert run_cli(*command).exit_code == 0
    src = write_lines(tmp_path / "in.en", ["the dog"])
    result = run_cli(
        "translate",
        "--model",
        trained / "run",
        "--model",
        other / "run" / "checkpoints" / "last.pt",
        "--input",
        src,
    )
    assert result.exit_code == 2
    assert "an ensemble needs one tokenizer" in one_line(result.stderr)


def test_evaluate_run_translates_and_scores_the_test_split(trained: Path) -> None:
    import sacrebleu

    run = trained / "run"
    (run / "reports" / "training.png").unlink()  # drawn by training, and again by evaluate
    result = run_cli("evaluate", run, "--buckets", "3,6")
    assert result.exit_code == 0, result.stderr
    assert (run / "reports" / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hyps = (run / "translations" / "test.de").read_text(encoding="utf-8").splitlines()
    refs = (run / "data" / "text" / "test.de").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == len(refs) == 40
    report = json.loads((run / "reports" / "test.json").read_text())
    bleu = report["overall"]["tiny"]["bleu"]["score"]
    assert bleu == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert [b["label"] for b in report["buckets"]] == ["≤3", "4-6", "7+"]
    assert (run / "reports" / "test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "11-20" not in result.stdout and "4-6" in one_line(result.stdout)
    assert "plot" in one_line(result.stderr)


def test_evaluate_run_without_a_test_split(tmp_path: Path) -> None:
    result = run_cli("evaluate", tmp_path)
    assert result.exit_code == 2 and "not a run directory" in one_line(result.stderr)


def test_progress_is_silent_on_a_pipe_unless_asked(trained: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.en", ["the dog", "a cat"])
    quiet = run_cli("translate", "--model", trained / "run", "--input", src)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    asked = run_cli("translate", "--model", trained / "run", "--input", src, "--progress")
    assert asked.exit_code == 0 and "translated 2 lines" in one_line(asked.stderr)
    assert asked.stdout == quiet.stdout
    to_file = run_cli("translate", "--model", trained / "run", "-i", src, "-o", tmp_path / "o")
    assert "translated 2 lines" in one_line(to_file.stderr)  # a file output: shown by default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["RUN", "--hyp", "h.de", "--ref", "r.de"], "not both"),
        (["--hyp", "h.de"], "give --hyp FILE and --ref FILE"),
    ],
)
def test_evaluate_needs_one_form(trained: Path, args: list[str], message: str) -> None:
    result = run_cli("evaluate", *[str(trained / "run") if a == "RUN" else a for a in args])
    assert result.exit_code == 2 and message in one_line(result.stderr)


def test_average_refuses_one_checkpoint_and_different_models(trained: Path, tmp_path: Path) -> None:
    step = sorted((trained / "run" / "checkpoints").glob("step-*.pt"))[0]
    one = run_cli("average", step, "-o", tmp_path / "a.pt")
    assert one.exit_code == 2 and "at least two" in one_line(one.stderr)
    other = tmp_path / "other.pt"
    checkpoint = Checkpoint.read(step)
    checkpoint.model = {k: v[:1] for k, v in checkpoint.model.items()}  # different shapes
    checkpoint.write(other)
    differ = run_cli("average", step, other, "-o", tmp_path / "b.pt")
    assert differ.exit_code == 2 and "different models" in one_line(differ.stderr)
    assert not (tmp_path / "b.pt").exists()


# ------------------------------------------------------------- the Python page's first example


def python_page_example() -> str:
    page = Path(__file__).resolve().parents[1] / "docs" / "python.md"
    section = page.read_text(encoding="utf-8").split("## Translating", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/python.md's 'Translating' section has no python block"
    return match.group(1)


def test_python_page_example_prints_what_it_says(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/python.md's first example, as written, on the tiny model as runs/demo, prints what
    its comments say (tests/test_docs.py runs every example; this one checks its output)."""
    (tmp_path / "runs").mkdir()
    os.symlink(trained / "run", tmp_path / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(python_page_example(), "docs/python.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 3 + 2  # best text, 3-best with scores, pieces, attention shape
    assert re.fullmatch(r"\s*-?\d+\.\d{3}  .*", lines[1])
    assert lines[-1].startswith("torch.Size([")


def test_decode_option_errors_name_the_option_as_the_caller_knows_it(
    translator: Translator,
) -> None:
    with pytest.raises(UserError, match="--nbest 4 must be between 1 and --beam 2"):
        translator.defaults.replace(beam_size=2, nbest=4)
    with pytest.raises(UserError, match=r"^nbest 4 must be between 1 and beam 2"):
        translator.defaults.replace({"beam_size": "beam", "nbest": "nbest"}, beam_size=2, nbest=4)
    with pytest.raises(UserError, match="--beam must be at least 1, got 0"):
        translator.defaults.replace(beam_size=0)
    with pytest.raises(UserError, match="unknown decoding option 'beem'"):
        translator.defaults.replace(beem=3)


def test_bf16_on_a_cpu_decodes_with_a_bf16_copy_of_the_model(trained: Path) -> None:
    """--precision bf16 on a CPU: a bf16 copy of the model, made once (no autocast); the
    loaded model stays fp32 and decodes fp32; auto is fp32 on a CPU."""
    translator = Translator.load(trained / "run", device="cpu")
    assert translator.precision == "fp32"
    assert translator.models_for(translator.defaults)[0] is translator.models[0]
    bf16 = translator.defaults.replace(precision="bf16")
    decoding = translator.models_for(bf16)[0]
    assert next(decoding.parameters()).dtype == torch.bfloat16
    assert translator.models_for(bf16)[0] is decoding  # made once
    assert next(translator.models[0].parameters()).dtype == torch.float32
    lines = ["the old man sees the dog .", "a cat ."]
    assert len(translator.translate(lines, bf16)) == 2


def test_the_recipe_chooses_the_decoding_precision(trained: Path, tmp_path: Path) -> None:
    """`decode.precision` in the recipe is the default; `precision=` at load and
    `DecodeOptions.precision` per call override it, with the same output either way."""
    from dataclasses import replace

    checkpoint = Checkpoint.read(trained / "run" / "checkpoints" / "best.pt")
    recipe = checkpoint.recipe()
    decode = recipe.decode.model_copy(update={"precision": "bf16"})
    path = tmp_path / "bf16.pt"
    replace(checkpoint, recipe_yaml=recipe.model_copy(update={"decode": decode}).to_yaml()).write(
        path
    )
    by_recipe = Translator.load(path, device="cpu")
    assert by_recipe.precision == "bf16" and by_recipe.defaults.precision == "bf16"
    by_caller = Translator.load(path, device="cpu", precision="fp32")
    assert by_caller.precision == "fp32"
    lines = ["the old man sees the dog .", "a cat ."]
    per_call = by_caller.translate(lines, by_caller.defaults.replace(precision="bf16"))
    assert [r.hyps[0].tokens for r in per_call] == [
        r.hyps[0].tokens for r in by_recipe.translate(lines)
    ]
    with pytest.raises(UserError, match="--precision must be auto, fp32, bf16 or fp16"):
        by_caller.defaults.replace(precision="int4")
