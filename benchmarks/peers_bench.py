"""nmtkit side by side with the peer toolkits, in one run: training speed, decoding speed, BLEU.

    python benchmarks/peers_bench.py --work runs/bench/peers --steps 1000 --peers onmt
    python benchmarks/peers_bench.py --work runs/bench/peers --steps 1000 --decode-only

1. Prepares the built-in corpus with separate 1,400-piece BPE vocabularies (`WORK/run`) and
   exports the SentencePiece pieces for the peers (`benchmarks/export_pieces.py`), so every
   toolkit trains on identical tokens.
2. For each peer: `../shared/peers/run_peer.sh PEER DATA STEPS ...` (its own venv, 2 threads,
   4,096-token batches) trains. OpenNMT-py's model then decodes the test set with
   `onmt_translate`, beam 5 and greedy (max length 250, no length penalty) at each batch
   setting of `--onmt-batches` (the harness's 32 sentences, and token batches of several
   sizes): its figure is the fastest setting's, so every ratio is against OpenNMT-py at its
   best on this machine. Other peers report the harness's own beam-5 decode.
3. nmtkit trains the same model (the peers README's mapping: 2-layer biLSTM 2x128 encoder,
   2-layer LSTM 256 decoder, Luong general attention, input feeding, untied embeddings 256,
   dropout 0.2, decoder initialised from the encoder's final states, Adam 1e-3, clip 5, no
   label smoothing, uniform init ±0.1) for the same number of updates and decodes the same
   test sentences with beam 5 (no length penalty, like the peers) and greedy, in each decoding
   variant: fp32 and bf16 (a bf16 copy of the model on a CPU), each in the whole vocabulary
   (`--no-shortlist`) and with the vocabulary shortlist (`--shortlist`); nmtkit's default on
   a CPU is fp32 with the shortlist where the target vocabulary has 2,000+ pieces.
4. With `--real M30WORK --real-corpus DIR`: the same decoding comparison (OpenNMT-py's sweep,
   nmtkit's variants) on the models `benchmarks/multi30k_bench.py` trained on real text
   (Multi30k test2016, `--real-direction`), each toolkit's own selected checkpoint; a
   checkpoint without a lexical table gets one learned from its run's prepared data.

Definitions follow `../shared/peers/README.md`: training tokens are real target tokens (EOS
counted); whole-run tok/s = tokens / wall clock of the training command; steady tok/s leaves
out the first logging interval; decoding sentences/s = test sentences / wall clock of the
whole translate command (start-up and model loading included). BLEU: sacrebleu defaults on
detokenized output. Everything runs one job at a time. `--decode-only` reuses the models of
an earlier run in the same --work directory. Results go to the `peers` section of the
Markdown file and to the JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import cpu_description, shown_command, update_json, write_section  # noqa: E402

SECTION = "peers"
PEERS = REPO.parent / "shared" / "peers"
THREADS = 2
DATA_FLAGS = ["--set", "tokenizer.joint=false", "--set", "tokenizer.vocab_size=1400"]
MODEL_FLAGS = [
    *("--set", "model.encoder_layers=2", "--set", "model.decoder_layers=2"),
    *("--set", "model.input_feeding=concat", "--set", "model.init=final"),
    *("--set", "model.dropout=0.2", "--set", "model.tie_embeddings=false"),
    *("--set", "train.lr=0.001", "--set", "train.label_smoothing=0"),
    *("--set", "train.clip_norm=5", "--set", "train.batch_tokens=4096"),
    *("--set", "train.seed=1234", "--set", "train.max_time=null"),
]
PEER_NAMES = {"onmt": "OpenNMT-py", "joey": "JoeyNMT", "fairseq": "fairseq"}
ONMT_BATCHES = ["sents:32", "tokens:1024", "tokens:2048", "tokens:4096", "tokens:8192"]
SEARCHES = {"beam5": (["--beam", "5", "--alpha", "0"], 5), "greedy": (["--greedy"], 1)}
# nmtkit's decoding variants: name suffix -> flags
VARIANTS = {
    "": ["--precision", "fp32", "--no-shortlist"],
    "_bf16": ["--precision", "bf16", "--no-shortlist"],
    "_sl": ["--precision", "fp32", "--shortlist"],
    "_sl_bf16": ["--precision", "bf16", "--shortlist"],
}


def env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(THREADS),
        "MKL_NUM_THREADS": str(THREADS),
        "PYTHONPATH": str(REPO),
        "CUDA_VISIBLE_DEVICES": "",
    }


def timed(cmd: list[str], log: Path, **kwargs: Any) -> float:
    """Run cmd (output to log), fail loudly; return its wall-clock seconds."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(), **kwargs)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({done.returncode}); see {log}")
    return seconds


def bleu(hyp: Path, ref: Path) -> float:
    import sacrebleu

    hyps = hyp.read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    return round(sacrebleu.metrics.BLEU().corpus_score(hyps, [refs]).score, 2)


def prepare(work: Path, test_lines: int) -> tuple[Path, Path, Path]:
    run = work / "run"
    if not (run / "data" / "manifest.json").exists():
        cmd = [sys.executable, "-m", "nmtkit", "prepare", "recipes/demo.yaml"]
        timed([*cmd, "--set", f"run_dir={run}", *DATA_FLAGS], work / "prepare.log", cwd=REPO)
    pieces = work / "peer-data"
    export = [sys.executable, str(REPO / "benchmarks" / "export_pieces.py"), str(run / "data")]
    timed([*export, str(pieces), "--test-lines", str(test_lines)], work / "export.log")
    source = work / "test.en"
    lines = (run / "data" / "text" / "test.en").read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join(lines[:test_lines]) + "\n", encoding="utf-8")
    return run, pieces, source


def peer(name: str, pieces: Path, out: Path, steps: int, venvs: Path, train: bool) -> dict:
    """Train with the peers harness (unless `train` is False: reuse its run in `out`), then
    decode the exported test set with beam 5 and greedy (OpenNMT-py) and score BLEU."""
    if train:
        cmd = [str(PEERS / "run_peer.sh"), name, str(pieces), str(steps), str(out)]
        flags = ["--batch-tokens", "4096", "--log-every", str(max(1, steps // 10))]
        os.environ["PEERS_VENV_ROOT"] = str(venvs)
        timed([*cmd, *flags, "--threads", str(THREADS)], out.parent / f"{name}.log")
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    row = {
        "toolkit": f"{PEER_NAMES[name]} {result['peer_version']}",
        "tgt_tokens_per_update": round(result["train_tgt_tokens_per_step"]),
        "train_tok_per_s": round(result["train_tok_per_s"]),
        "train_tok_per_s_steady": round(result["train_tok_per_s_steady"]),
        "params": result["n_params"],
    }
    if name != "onmt":  # the harness's own beam-5 decode of its test set
        row["beam5_sent_per_s"] = round(result["n_test"] / result["decode_wall_s"], 1)
        row["beam5_bleu"] = result["bleu"]
        return row
    model = out / f"model_step_{steps}.pt"
    best, sweep = onmt_sweep(venvs, model, pieces / "test.src", pieces / "test.raw.tgt", out)
    return {**row, **best, "onmt_sweep": sweep}


def onmt_sweep(
    venvs: Path, model: Path, test: Path, ref: Path, out: Path, batches: list[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """OpenNMT-py decodes `test` (pieces) with beam 5 and greedy at every batch setting
    ("sents:N" or "tokens:N"); returns the fastest setting's figures per search and the sweep."""
    lines = len(test.read_text(encoding="utf-8").splitlines())
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # see ../shared/peers/README.md
    sweep: list[dict[str, Any]] = []
    for setting in batches or ONMT_BATCHES:
        kind, size = setting.split(":")
        for search, (_, beam) in SEARCHES.items():
            name = f"{search}.{kind}{size}"
            hyp = out / f"{name}.pieces"
            translate = [
                str(venvs / "venv_onmt" / "bin" / "onmt_translate"),
                *("-model", str(model), "-src", str(test), "-output", str(hyp)),
                *("-beam_size", str(beam), "-batch_size", size, "-batch_type", kind),
                *("-max_length", "250", "-gpu", "-1"),
            ]
            seconds = timed(translate, out / f"{name}.log")
            detok = out / f"{name}.detok"  # the harness's detokenization: join, ▁ -> space
            pieces_text = hyp.read_text(encoding="utf-8").splitlines()
            detok.write_text(
                "".join(t.replace(" ", "").replace("▁", " ").strip() + "\n" for t in pieces_text),
                encoding="utf-8",
            )
            sweep.append(
                {
                    "search": search,
                    "batch": setting,
                    "sent_per_s": round(lines / seconds, 1),
                    "bleu": bleu(detok, ref),
                }
            )
            print(sweep[-1], flush=True)
    best: dict[str, Any] = {}
    for search in SEARCHES:
        top = max((r for r in sweep if r["search"] == search), key=lambda r: r["sent_per_s"])
        best.update(
            {
                f"{search}_sent_per_s": top["sent_per_s"],
                f"{search}_bleu": top["bleu"],
                f"{search}_batch": top["batch"],
            }
        )
    return best, sweep


def nmtkit_decode(checkpoint: Path, source: Path, ref: Path, work: Path) -> dict[str, Any]:
    """nmtkit decodes `source` (raw text) with beam 5 and greedy in every variant (fp32, bf16,
    shortlist, shortlist + bf16), 8,000 source tokens per batch, whole command timed."""
    cli = [sys.executable, "-m", "nmtkit"]
    lines = len(source.read_text(encoding="utf-8").splitlines())
    row: dict[str, Any] = {}
    for suffix, variant in VARIANTS.items():
        for search, (flags, _) in SEARCHES.items():
            name = f"{search}{suffix}"
            hyp = work / f"nmtkit.{name}.txt"
            translate = [*cli, "translate", "-m", str(checkpoint), "-i", str(source)]
            translate += ["-o", str(hyp), *flags, *variant, "--batch-tokens", "8000"]
            translate += ["--device", "cpu", "--no-progress"]
            seconds = timed(translate, work / f"nmtkit-{name}.log", cwd=REPO)
            row[f"{name}_sent_per_s"] = round(lines / seconds, 1)
            row[f"{name}_bleu"] = bleu(hyp, ref)
            print(name, row[f"{name}_sent_per_s"], row[f"{name}_bleu"], flush=True)
    return row


def nmtkit(run: Path, pieces: Path, source: Path, steps: int, work: Path, train: bool) -> dict:
    """Train the same model for `steps` updates (unless `train` is False: reuse the run and
    its recorded wall time), then decode the test sources with beam 5 and greedy."""
    cli = [sys.executable, "-m", "nmtkit"]
    if train:
        command = [*cli, "train", "recipes/demo.yaml", "--restart", "--set", f"run_dir={run}"]
        command += [*DATA_FLAGS, *MODEL_FLAGS, "--set", f"train.max_steps={steps}"]
        command += ["--set", f"train.log_every={max(1, steps // 10)}"]
        command += ["--set", f"train.valid_every={steps}"]  # one validation, at the end
        wall = timed(command, work / "nmtkit-train.log", cwd=REPO)
        (work / "nmtkit-train.json").write_text(json.dumps({"wall_s": wall}), encoding="utf-8")
    wall = json.loads((work / "nmtkit-train.json").read_text(encoding="utf-8"))["wall_s"]
    log_lines = (run / "logs" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in log_lines]
    train_records = [r for r in records if r["kind"] == "train"]
    tokens = sum(r["tgt_tokens"] for r in train_records)
    steady = train_records[1:]
    seconds = sum(r["tgt_tokens"] / r["tok_per_s"] for r in steady)
    checkpoint = run / "checkpoints" / "last.pt"
    from nmtkit.checkpoint import Checkpoint

    row: dict[str, Any] = {
        "toolkit": f"nmtkit {_version()}",
        "tgt_tokens_per_update": round(tokens / steps),
        "train_tok_per_s": round(tokens / wall),
        "train_tok_per_s_steady": round(sum(r["tgt_tokens"] for r in steady) / seconds),
        "params": sum(t.numel() for t in Checkpoint.read(checkpoint).model.values()),
    }
    return {**row, **nmtkit_decode(checkpoint, source, pieces / "test.raw.tgt", work)}


def _version() -> str:
    from nmtkit import __version__

    return __version__


def real_corpus(m30: Path, corpus: Path, direction: str, venvs: Path, work: Path) -> dict:
    """The decoding comparison on the Multi30k models of `benchmarks/multi30k_bench.py` (its
    --work folder `m30`): OpenNMT-py's selected checkpoint, nmtkit's best.pt, test2016."""
    src, tgt = direction.split("-")
    rows = [json.loads(line) for line in (m30 / "results.jsonl").open(encoding="utf-8")]
    onmt = [r for r in rows if r["toolkit"].startswith("OpenNMT") and r["direction"] == direction]
    onmt = [r for r in onmt if not r.get("tag")]
    if not onmt:
        raise SystemExit(f"{m30}/results.jsonl has no OpenNMT-py run for {direction}")
    out = work / f"real-{direction}"
    out.mkdir(parents=True, exist_ok=True)
    pieces = m30 / f"pieces-{direction}"
    model = m30 / f"onmt-{direction}" / f"model_step_{onmt[-1]['checkpoint_step']}.pt"
    best, sweep = onmt_sweep(venvs, model, pieces / "test.src", pieces / "test.raw.tgt", out)
    from shortlist_bench import with_table

    checkpoint = with_table(m30 / f"nmtkit-{direction}" / "checkpoints" / "best.pt", out)
    source, ref = corpus / f"test2016.{src}", corpus / f"test2016.{tgt}"
    return {
        "direction": direction,
        "test_lines": len(source.read_text(encoding="utf-8").splitlines()),
        "rows": [
            {"toolkit": onmt[-1]["toolkit"], **best, "onmt_sweep": sweep},
            {"toolkit": f"nmtkit {_version()}", **nmtkit_decode(checkpoint, source, ref, out)},
        ],
    }


def decode_tables(rows: list[dict[str, Any]]) -> list[str]:
    """OpenNMT-py at its best setting and nmtkit's variants, beam 5 and greedy, with ratios;
    then OpenNMT-py's sweep."""
    onmt = next((r for r in rows if r["toolkit"].startswith("OpenNMT")), None)
    ours = rows[-1]
    lines = [
        "| decoder | beam 5 sent/s | BLEU | x OpenNMT-py | greedy sent/s | BLEU | x OpenNMT-py |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def ratio(value: float | None, search: str) -> str:
        best = onmt and onmt.get(f"{search}_sent_per_s")
        return f"{value / best:.2f}x" if value and best else "n/a"

    if onmt:
        lines.append(
            f"| {onmt['toolkit']}, fastest batch setting ({onmt['beam5_batch']} / "
            f"{onmt['greedy_batch']}) | {onmt['beam5_sent_per_s']:,} | {onmt['beam5_bleu']} | "
            f"1.00x | {onmt['greedy_sent_per_s']:,} | {onmt['greedy_bleu']} | 1.00x |"
        )
    labels = {
        "": "fp32, whole vocabulary (the default below 2,000 target pieces)",
        "_bf16": "bf16, whole vocabulary",
        "_sl": "shortlist, fp32 (the default from 2,000 target pieces)",
        "_sl_bf16": "shortlist, bf16",
    }
    for suffix, label in labels.items():
        beam, greedy = ours.get(f"beam5{suffix}_sent_per_s"), ours.get(f"greedy{suffix}_sent_per_s")
        if beam is None:
            continue
        lines.append(
            f"| {ours['toolkit']}, {label} | {beam:,} | {ours[f'beam5{suffix}_bleu']} | "
            f"**{ratio(beam, 'beam5')}** | {greedy:,} | {ours[f'greedy{suffix}_bleu']} | "
            f"**{ratio(greedy, 'greedy')}** |"
        )
    if onmt and onmt.get("onmt_sweep"):
        sweep = onmt["onmt_sweep"]
        settings = list(dict.fromkeys(r["batch"] for r in sweep))
        lines += ["", "OpenNMT-py's batch sweep (sentences/s, BLEU):", ""]
        lines += ["| batch | " + " | ".join(settings) + " |"]
        lines += ["|---|" + "---:|" * len(settings)]
        for search in SEARCHES:
            found = {(r["search"], r["batch"]): r for r in sweep}
            cells = [
                f"{found[search, b]['sent_per_s']:,} ({found[search, b]['bleu']})" for b in settings
            ]
            lines.append(f"| {search} | " + " | ".join(cells) + " |")
    return lines


def render(
    rows: list[dict[str, Any]],
    steps: int,
    test_lines: int,
    command: str,
    decode_only: bool = False,
    real: list[dict[str, Any]] | None = None,
) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        return "n/a" if value is None else f"{value:,}"

    table = [
        "| toolkit | params | tgt tokens / update | train tok/s, whole run | train tok/s, steady |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        keys = ["params", "tgt_tokens_per_update", "train_tok_per_s", "train_tok_per_s_steady"]
        table.append(f"| {r['toolkit']} | " + " | ".join(cell(r, k) for k in keys) + " |")
    ours, peers = rows[-1], rows[:-1]
    ratios = []
    for key, label in (
        ("train_tok_per_s_steady", "training tok/s (steady)"),
        ("train_tok_per_s", "training tok/s (whole run)"),
    ):
        best = max((p[key] for p in peers if p.get(key) is not None), default=None)
        if best:
            ratios.append(f"{label} **{ours[key] / best:.2f}x**")
    real_sections: list[str] = []
    for study in real or []:
        real_sections += [
            "",
            f"**On real text: Multi30k {study['direction']}, test2016 "
            f"({study['test_lines']:,} sentences).** The models `benchmarks/multi30k_bench.py` "
            "trained (each toolkit's selected checkpoint), the same decoding settings and "
            "timing as above.",
            "",
            *decode_tables(study["rows"]),
        ]
    return "\n".join(
        [
            f"Machine: {cpu_description()}, {THREADS} threads per "
            f"job, one job at a time; measured {time.strftime('%Y-%m-%d')}. Data: the built-in "
            "corpus (60k pairs) with separate 1,400-piece BPE vocabularies, identical pieces "
            "for every toolkit. Model: 2-layer biLSTM (2x128) encoder, 2-layer LSTM 256 "
            "decoder, Luong general attention, input feeding, embeddings 256 (untied), dropout "
            "0.2, decoder initialised from the encoder's final states, Adam 1e-3, clip 5, no "
            f"label smoothing, uniform init ±0.1, 4,096-token batches, **{steps:,} updates**.",
            "",
            *table,
            "",
            "nmtkit / the faster peer: " + (", ".join(ratios) or "n/a") + ".",
            "",
            f"Decoding the first {test_lines:,} sentences of the built-in test split, without "
            "length penalty, the whole command timed (start-up and model loading included). "
            "OpenNMT-py at each setting of its batch sweep, its fastest counted; nmtkit with "
            "8,000 source tokens per batch, in fp32 and in bf16 (`--precision bf16`: a bf16 "
            "copy of the model), each in the whole vocabulary "
            "(`--no-shortlist`) and with the vocabulary shortlist (`--shortlist`, the "
            "recipe's `decode.shortlist_k` / `shortlist_frequent`).",
            "",
            *decode_tables(rows),
            *real_sections,
            "",
            *(
                [
                    "Training figures and models: from the earlier training run of this script in "
                    "the same --work directory (same --steps); this run decoded them again.",
                    "",
                ]
                if decode_only
                else []
            ),
            f"Command: `{command}`",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "peers")
    parser.add_argument("--steps", type=int, default=1000, help="training updates per toolkit")
    parser.add_argument("--test-lines", type=int, default=2000, help="test sentences decoded")
    parser.add_argument("--peers", nargs="*", default=["onmt"], choices=sorted(PEER_NAMES))
    parser.add_argument(
        "--venv-root",
        type=Path,
        default=Path(os.environ.get("PEERS_VENV_ROOT", "/tmp/nmtkit-peers")),
        help="where ../shared/peers/install_peers.sh put (or puts) the peers' venvs",
    )
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="reuse the models already trained in --work (e.g. to decode more test lines)",
    )
    parser.add_argument(
        "--onmt-batches",
        nargs="+",
        default=ONMT_BATCHES,
        help="OpenNMT-py decoding settings to sweep, sents:N or tokens:N",
    )
    parser.add_argument("--real", type=Path, help="a benchmarks/multi30k_bench.py --work folder")
    parser.add_argument("--real-corpus", type=Path, help="the Multi30k folder (test2016.*)")
    parser.add_argument("--real-direction", nargs="+", default=["de-en"])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    ONMT_BATCHES[:] = args.onmt_batches
    if args.real and not args.real_corpus:
        parser.error("--real needs --real-corpus (the folder with test2016.<lang>)")

    args.work.mkdir(parents=True, exist_ok=True)
    for name in args.peers:
        if not (args.venv_root / f"venv_{name}").exists():
            print(f"installing {name} into {args.venv_root} ...", flush=True)
            os.environ["PEERS_VENV_ROOT"] = str(args.venv_root)
            subprocess.run([str(PEERS / "install_peers.sh"), "--locked", name], check=True)
    run, pieces, source = prepare(args.work, args.test_lines)
    rows = []
    for name in args.peers:
        out = args.work / name
        rows.append(peer(name, pieces, out, args.steps, args.venv_root, not args.decode_only))
        print(rows[-1], flush=True)
    rows.append(nmtkit(run, pieces, source, args.steps, args.work, not args.decode_only))
    print(rows[-1], flush=True)
    real = [
        real_corpus(args.real, args.real_corpus, direction, args.venv_root, args.work)
        for direction in (args.real_direction if args.real else [])
    ]
    command = shown_command("peers_bench.py", sys.argv[1:])
    text = render(rows, args.steps, args.test_lines, command, args.decode_only, real)
    results = {"steps": args.steps, "rows": rows, "real": real}
    update_json(args.out.with_suffix(".json"), {"peers": results})
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
