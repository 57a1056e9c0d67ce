"""The benchmark scripts still run against the current code (they use some of its internals):
one short measurement each, on the toy run of test_train."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tests.train.test_train import prepared_run

__all__ = ["prepared_run"]  # the fixture, shared with test_train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_train_bench_measures_throughput_and_flops(prepared_run: Path) -> None:
    import train_bench

    row = train_bench.measure(
        "iwslt", prepared_run / "run" / "data", torch.device("cpu"), "fp32", 1, 2
    )
    assert row["tok_per_s"] > 0
    assert row["params"] > 5_000_000  # the IWSLT size, whatever the toy data's vocabulary
    # FLOPs per target token: at least the output layer's forward and backward (3 x 2 x H x V)
    assert row["train_flops_per_tgt_token"] > 3 * 2 * 256 * 8000
    assert train_bench.matmul_peak(torch.device("cpu"), torch.float32, 64, 0.05) > 0


@pytest.mark.parametrize("name", ["demo", "iwslt", "peers", "marian"])
def test_benchmark_sizes_are_valid_model_sections(name: str) -> None:
    import train_bench

    from nmtkit.recipe import ModelConfig

    ModelConfig(**train_bench.SIZES[name][1])


def test_decode_growth_exponent_fits_a_power_law() -> None:
    import decode_bench

    rows = [
        {"search": "greedy", "mean_src_words": n, "ms_per_sentence": 0.5 * n**1.5}
        for n in (5.0, 15.0, 40.0)
    ]
    assert abs(decode_bench.growth_exponent(rows, "greedy") - 1.5) < 1e-9


def test_peers_table_states_the_ratio_to_opennmt_at_its_best() -> None:
    import peers_bench

    sweep = [
        {"search": search, "batch": batch, "sent_per_s": speed, "bleu": 60.0}
        for search, batch, speed in (
            ("beam5", "sents:32", 40.0),
            ("greedy", "sents:32", 80.0),
            ("beam5", "tokens:2048", 60.0),
            ("greedy", "tokens:2048", 100.0),
        )
    ]
    peer = {
        "toolkit": "OpenNMT-py 3.5.1",
        "params": 3,
        "tgt_tokens_per_update": 3700,
        "train_tok_per_s": 4000,
        "train_tok_per_s_steady": 5000,
        "beam5_sent_per_s": 60.0,
        "beam5_bleu": 60.0,
        "beam5_batch": "tokens:2048",
        "greedy_sent_per_s": 100.0,
        "greedy_bleu": 59.0,
        "greedy_batch": "tokens:2048",
        "onmt_sweep": sweep,
    }
    ours = {
        "toolkit": "nmtkit",
        "params": 3,
        "tgt_tokens_per_update": 3700,
        "train_tok_per_s": 4000,
        "train_tok_per_s_steady": 10000,
        **{
            f"{s}{v}_sent_per_s": 90.0 * (1 + i)
            for i, v in enumerate(("", "_sl"))
            for s in ("beam5", "greedy")
        },
        **{f"{s}{v}_bleu": 60.1 for v in ("", "_sl") for s in ("beam5", "greedy")},
    }
    real = {"direction": "de-en", "test_lines": 1000, "rows": [peer, ours]}
    text = peers_bench.render(
        [peer, ours], 1000, 500, "python benchmarks/peers_bench.py", real=[real]
    )
    assert "training tok/s (steady) **2.00x**" in text
    assert "| nmtkit | 3 | 3,700 | 4,000 | 10,000 |" in text
    assert (
        "| nmtkit, fp32, whole vocabulary (the default below 2,000 target pieces) | 90.0 | 60.1 | "
        "**1.50x** | 90.0 | 60.1 | **0.90x** |" in text
    )
    assert (
        "| nmtkit, shortlist, fp32 (the default from 2,000 target pieces) | 180.0 | 60.1 | "
        "**3.00x** | 180.0 | 60.1 | **1.80x** |" in text
    )
    assert "| beam5 | 40.0 (60.0) | 60.0 (60.0) |" in text
    assert "Multi30k de-en, test2016 (1,000 sentences)" in text


def test_cell_bench_one_node_cell_equals_the_eager_cell() -> None:
    import cell_bench

    gates = torch.randn(2, 3, 16, dtype=torch.double, requires_grad=True)
    c = torch.randn(2, 3, 4, dtype=torch.double, requires_grad=True)
    for got, expected in zip(
        cell_bench.one_node(gates, c), cell_bench.eager(gates, c), strict=True
    ):
        torch.testing.assert_close(got, expected)
    assert torch.autograd.gradcheck(cell_bench.one_node, (gates, c))
    assert cell_bench.time_cell(cell_bench.eager, [2, 3, 4], 2) > 0


def test_serve_load_checks_every_answer_against_offline(trained: Path, tmp_path: Path) -> None:
    """benchmarks/serve_load.py end to end on the tiny model: two servers, a few requests, and
    a short soak whose every tenth request is malformed (each kind once)."""
    import json

    import serve_load

    out = tmp_path / "bench.md"
    argv = [str(trained / "run"), "--clients", "1", "4", "--unbatched-clients", "4"]
    argv += ["--requests", "16", "--check-requests", "100", "--threads", "1", "--out", str(out)]
    # a small body limit: the soak's over-limit body is 16 KiB, not the default 1 MiB (the
    # limit is read from the server's options)
    argv += ["--server-option=--max-body-bytes=16384"]
    assert serve_load.main(argv) == 0  # every good answer once, 200, equal to offline
    results = json.loads(out.with_suffix(".json").read_text())["serve"]
    check = results["check"]
    assert (check["ok"], check["good"], check["bad"]) == (90, 90, 10)
    assert check["server_counted"] == 100 and check["bad_4xx_json"] == 10
    assert (check["lost"], check["changed"]) == (0, 0)
    assert check["bad_statuses"] == {
        kind: {str(status): 1} for kind, status in serve_load.BAD_KINDS.items()
    }
    assert check["worker_restarts"] == {'model="run"': 0.0}
    assert [(r["server"], r["clients"], r["ok"]) for r in results["levels"]] == [
        ("batched", 1, 16),
        ("batched", 4, 64),
        ("unbatched", 4, 64),
    ]
    assert results["levels"][2]["batch_sentences"] == 1.0  # --max-batch-tokens 1: alone
    assert "<!-- serve:start -->" in out.read_text()


def test_multi30k_bench_maps_the_recipe_to_opennmt_and_renders(tmp_path: Path) -> None:
    """The real-text benchmark's OpenNMT-py options follow the shipped recipe's model, and
    its table renders from result rows (no corpus is read)."""
    import multi30k_bench

    corpus = tmp_path / "corpus"
    flags = multi30k_bench.recipe_flags(corpus, "de", "en", tmp_path / "run", [])[1::2]
    from nmtkit.recipe import load_recipe

    recipe = load_recipe(multi30k_bench.RECIPE, flags)
    files = recipe.data.source.files
    assert files is not None and not isinstance(files.train, str)
    assert (files.train.src, files.train.tgt) == (corpus / "train.de", corpus / "train.en")
    cfg = multi30k_bench.onmt_config(multi30k_bench.RECIPE, tmp_path, tmp_path, flags)
    m = recipe.model
    assert cfg["hidden_size"] == m.hidden_size and cfg["word_vec_size"] == m.embed_size
    assert cfg["encoder_type"] == "brnn" and cfg["rnn_type"] == m.cell.upper()
    assert cfg["global_attention"] == "general" and cfg["input_feed"] == 0
    assert cfg["label_smoothing"] == recipe.train.label_smoothing
    assert cfg["batch_size"] == recipe.train.batch_tokens and cfg["batch_type"] == "tokens"
    best = {
        "bleu": 40.1,
        "chrf": 60.2,
        "bleu_lc": 42.3,
        "bleu_signature": "s",
        "chrf_signature": "c",
    }
    rows = [
        {
            "toolkit": "nmtkit",
            "direction": "de-en",
            "updates": 900,
            "set": [],
            "best": best,
            "avg": best,
            **{k: best[k] for k in ("bleu", "chrf", "bleu_lc")},
        },
        {
            "toolkit": "OpenNMT-py 3.5.1",
            "direction": "de-en",
            "updates": 880,
            "set": [],
            "best": best,
            **{k: best[k] for k in ("bleu", "chrf", "bleu_lc")},
        },
    ]
    text = multi30k_bench.render(rows, "python benchmarks/multi30k_bench.py X", "30m")
    assert "| de-en | nmtkit | recipe | 2 | 900 | 40.10 | 60.20 | 42.30 |" in text
    assert "avg.pt" in text and "OpenNMT-py 3.5.1" in text


def test_gpu_check_says_no_gpu_and_keeps_working_on_the_cpu(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make gpu-check` runs in CI (no GPU): it says so and times the code path at toy size,
    a trained model's test set included."""
    import json

    import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu-check.json"
    trained_args = ["--model", str(trained / "run" / "checkpoints" / "best.pt")]
    trained_args += ["--src", str(trained / "test.en"), "--ref", str(trained / "test.de")]
    summary = gpu_check.main(["--json", str(out), *trained_args])
    assert capsys.readouterr().out.startswith("no GPU")
    assert summary["gpu"] is False and summary["tests"]["summary"] == "not run"
    assert json.loads(out.read_text(encoding="utf-8")) == summary
    assert summary["train"][0]["tok_per_s"] > 0
    assert [r["search"] for r in summary["decode"]] == ["greedy", "beam 5"]
    assert all(r["sent_per_s"] > 0 for r in summary["decode"])
    rows = summary["trained"]
    assert [(r["search"], r["precision"]) for r in rows] == [
        ("beam 5", "fp32"), ("greedy", "fp32"), ("beam 5", "bf16"), ("greedy", "bf16")
    ]  # fmt: skip
    assert all(r["sentences"] == 40 and 0 <= r["bleu"] <= 100 for r in rows)
    assert "test_gpu.py" in " ".join(gpu_check.gpu_test_files())


def test_shortlist_bench_compares_with_the_full_vocabulary(trained: Path, tmp_path: Path) -> None:
    import shortlist_bench

    from nmtkit.checkpoint import Checkpoint

    out = tmp_path / "bench.md"
    argv = [str(trained / "run"), str(trained / "test.en"), str(trained / "test.de")]
    argv += ["--settings", "3:5", "--precisions", "fp32", "--lines", "20"]
    rows = shortlist_bench.main([*argv, "--work", str(tmp_path), "--out", str(out)])
    full = [r for r in rows if r["setting"] == "full"]
    assert [r["search"] for r in full] == ["beam 5", "greedy"]
    assert all(0 < r["size"] < full[0]["size"] for r in rows if r["setting"] == "3:5")
    assert "<!-- shortlist-demo:start -->" in out.read_text(encoding="utf-8")
    # A checkpoint from before tables were stored gets the one training would have stored.
    best = trained / "run" / "checkpoints" / "best.pt"
    checkpoint = Checkpoint.read(best)
    old = tmp_path / "old.pt"
    from dataclasses import replace

    replace(checkpoint, lexical=None, training=None).write(old)
    copy = Checkpoint.read(shortlist_bench.with_table(old, tmp_path)).lexical
    assert copy is not None and checkpoint.lexical is not None
    assert (copy.candidates == checkpoint.lexical.candidates).all()


def test_train_ab_reports_medians_and_the_range_of_their_ratio(tmp_path: Path) -> None:
    """The alternating training benchmark: each toolkit's median, min and max over rounds,
    and nmtkit / OpenNMT-py as the ratio of medians with its range; steady tok/s leaves the
    first logging interval out."""
    import json

    import train_ab

    runs = {"onmt": [4000, 4400, 4200], "fp32": [8000, 9000, 8800], "bf16": [4200] * 3}
    summary = train_ab.summarise(runs)
    assert summary["toolkits"]["onmt"] == {"runs": [4000, 4400, 4200], "median": 4200,
                                           "min": 4000, "max": 4400}  # fmt: skip
    assert summary["toolkits"]["fp32"]["median"] == 8800
    assert summary["ratios"]["fp32"] == {
        "ratio": round(8800 / 4200, 2),
        "range": [round(8000 / 4400, 2), round(9000 / 4000, 2)],
    }
    assert summary["ratios"]["bf16"]["ratio"] == 1.0
    text = train_ab.render(summary, 1000, "python benchmarks/train_ab.py --rounds 3")
    assert "| OpenNMT-py | 4,000, 4,400, 4,200 | 4,200 | 4,000-4,400 |" in text
    assert "nmtkit (fp32) / OpenNMT-py, ratio of medians: **2.10x** (range 1.82x-2.25x)" in text
    assert "| nmtkit (bf16) | 4,200, 4,200, 4,200 |" in text
    assert train_ab.parse_variant("bf16:train.precision=bf16,train.seed=2") == (
        "bf16",
        ["train.precision=bf16", "train.seed=2"],
    )
    assert train_ab.parse_variant("defaults") == ("defaults", [])
    metrics = tmp_path / "metrics.jsonl"
    records = [
        {"kind": "train", "tgt_tokens": 1000, "tok_per_s": 100.0},  # warm-up: left out
        {"kind": "valid", "bleu": 1.0},
        {"kind": "train", "tgt_tokens": 3000, "tok_per_s": 3000.0},
        {"kind": "train", "tgt_tokens": 1000, "tok_per_s": 1000.0},
    ]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert train_ab.steady_tok_per_s(metrics) == pytest.approx(2000.0)
