"""Quality per CPU budget on real text: nmtkit and OpenNMT-py, Multi30k, both directions.

    python benchmarks/multi30k_bench.py CORPUS --work runs/bench/multi30k
    python benchmarks/multi30k_bench.py CORPUS --work W --budget 30m --toolkits nmtkit onmt \
        --directions de-en en-de [--set model.hidden_size=512 ...] [--score-only]

CORPUS holds Multi30k's raw files (`train|valid|test2016.{en,de}`). For each direction:
1. nmtkit prepares `recipes/multi30k-cpu.yaml` (the files of CORPUS, the direction's languages)
   into `WORK/nmtkit-SRC-TGT`, trains it for `--budget` of wall clock (`train.max_time`:
   validation included) and translates test2016 with `best.pt` (and `avg.pt` when the recipe
   averages), beam 5 as the recipe says.
2. OpenNMT-py (the venv that `../shared/peers/install_peers.sh` makes; PEERS_VENV_ROOT) trains
   on exactly the same SentencePiece pieces (`benchmarks/export_pieces.py`) the same model (the
   recipe mapped to its options, below) for the same wall clock, counted from its first
   training step (its start-up is not charged), validating and saving every `--onmt-every`
   updates; the checkpoint with the best validation perplexity (its own model selection)
   translates test2016 with beam 5.
Both are scored against the raw references with sacrebleu: BLEU and chrF with default
signatures, and BLEU lowercased. Everything runs one job at a time with 2 threads. Results go
to WORK/results.jsonl and to the `multi30k` section of docs/benchmarks.md (and the JSON file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from sections import shown_command, shown_path, update_json, write_section  # noqa: E402

from nmtkit.recipe import load_recipe, parse_duration  # noqa: E402

SECTION = "multi30k"
THREADS = 2  # --threads; --cpus pins a run to cores (two runs side by side, a core each)
RECIPE = REPO / "recipes" / "multi30k-cpu.yaml"
TEST = "test2016"


def env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(THREADS),
        "MKL_NUM_THREADS": str(THREADS),
        "CUDA_VISIBLE_DEVICES": "",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",  # OpenNMT-py 3.5.1 on torch >= 2.6
    }


PIN: list[str] = []  # `taskset -c CPUS` when --cpus is given


def timed(cmd: list[str], log: Path) -> float:
    """Run cmd (output to log), fail loudly; return its wall-clock seconds."""
    cmd = [*PIN, *cmd]
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(), cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({done.returncode}); see {log}")
    return time.perf_counter() - started


def scores(hyp: Path, ref: Path) -> dict[str, Any]:
    import sacrebleu

    hyps = hyp.read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    if len(hyps) != len(refs):
        raise SystemExit(f"{hyp} has {len(hyps)} lines, {ref} {len(refs)}")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    lower = sacrebleu.metrics.BLEU(lowercase=True)
    return {
        "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
        "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
        "bleu_lc": round(lower.corpus_score(hyps, [refs]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def recipe_flags(corpus: Path, src: str, tgt: str, run: Path, extra: list[str]) -> list[str]:
    sets = [
        f"run_dir={run}",
        f"data.src_lang={src}",
        f"data.tgt_lang={tgt}",
        *(
            f"data.source.files.{s}={corpus / f}"
            for s, f in (("train", "train"), ("valid", "valid"))
        ),
        f"data.source.files.test={corpus / TEST}",
        *extra,
    ]
    return [flag for item in sets for flag in ("--set", item)]


def run_nmtkit(corpus: Path, src: str, tgt: str, work: Path, args: argparse.Namespace) -> dict:
    run = work / f"nmtkit-{src}-{tgt}{args.tag and '-' + args.tag}"
    flags = recipe_flags(corpus, src, tgt, run, args.set)
    cli = [sys.executable, "-m", "nmtkit"]
    recipe = load_recipe(RECIPE, flags[1::2])
    if not args.score_only:
        timed([*cli, "prepare", str(RECIPE), *flags], work / f"{run.name}.prepare.log")
        budget = ["--set", f"train.max_time={args.budget}"]
        wall = timed([*cli, "train", str(RECIPE), *flags, *budget, "--restart"], run / "train.log")
        (run / "wall.json").write_text(json.dumps({"train_wall_s": wall}), encoding="utf-8")
    records = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").open()]
    train = [r for r in records if r["kind"] == "train"]
    valid = [r for r in records if r["kind"] == "valid"]
    row: dict[str, Any] = {
        "toolkit": "nmtkit",
        "direction": f"{src}-{tgt}",
        "tag": args.tag,
        "set": args.set,
        "threads": THREADS,
        "budget": args.budget,
        "train_wall_s": json.loads((run / "wall.json").read_text())["train_wall_s"],
        "updates": max((r["step"] for r in records), default=0),
        "epochs": train[-1]["epoch"] if train else 0,
        "tgt_tokens": sum(r["tgt_tokens"] for r in train),
        "best_valid_bleu": max((r["bleu"] for r in valid), default=None),
        "model": recipe.model.model_dump(),
    }
    source, ref = corpus / f"{TEST}.{src}", corpus / f"{TEST}.{tgt}"
    names = ["best.pt", "avg.pt"] if recipe.train.average_last else ["best.pt"]
    for name in names:
        hyp = run / f"test.{name}.{tgt}"
        translate = [*cli, "translate", "-m", str(run / "checkpoints" / name), "-i", str(source)]
        seconds = timed([*translate, "-o", str(hyp), "--no-progress"], run / f"{name}.log")
        key = name.removesuffix(".pt")
        row[key] = {**scores(hyp, ref), "decode_s": round(seconds, 1)}
    row.update({k: row["best"][k] for k in ("bleu", "chrf", "bleu_lc")})
    return row


def onmt_config(recipe_path: Path, pieces: Path, out: Path, flags: list[str]) -> dict[str, Any]:
    """nmtkit's model and training settings in OpenNMT-py's options."""
    recipe = load_recipe(recipe_path, flags)
    m, t = recipe.model, recipe.train
    if m.cell not in ("lstm", "gru") or m.attention not in ("luong_general", "luong_dot"):
        raise SystemExit(f"no OpenNMT-py mapping for cell {m.cell}, attention {m.attention}")
    return {
        "save_data": str(out / "onmt_data"),
        "src_vocab": str(out / "vocab.src"),
        "tgt_vocab": str(out / "vocab.tgt"),
        "overwrite": True,
        "data": {
            "corpus_1": {
                "path_src": str(pieces / "train.src"),
                "path_tgt": str(pieces / "train.tgt"),
            },
            "valid": {"path_src": str(pieces / "valid.src"), "path_tgt": str(pieces / "valid.tgt")},
        },
        "src_vocab_size": 100000,
        "tgt_vocab_size": 100000,
        "model_type": "text",
        "encoder_type": "brnn" if m.bidirectional else "rnn",
        "decoder_type": "rnn",
        "rnn_type": m.cell.upper(),
        "enc_layers": m.encoder_layers,
        "dec_layers": m.decoder_layers,
        "word_vec_size": m.embed_size,
        "hidden_size": m.hidden_size,
        "global_attention": m.attention.removeprefix("luong_"),
        "input_feed": int(m.input_feeding != "none"),
        "bridge": m.init == "bridge",
        # OpenNMT-py ties the output layer to the embedding only when their sizes agree (nmtkit
        # projects the hidden state down to the embedding size first)
        "share_decoder_embeddings": m.tie_embeddings and m.hidden_size == m.embed_size,
        "dropout": [m.dropout],
        "param_init": m.init_range,
        "optim": "adam",
        "learning_rate": t.lr,
        "decay_method": "none",
        "learning_rate_decay": 1.0,
        "max_grad_norm": t.clip_norm or 0,
        "label_smoothing": t.label_smoothing,
        "batch_type": "tokens",
        "batch_size": t.batch_tokens,
        "normalization": "tokens",
        "accum_count": [t.accum_steps],
        "bucket_size": 29000,
        "num_workers": 0,
        "seed": t.seed,
    }


STEP = re.compile(r"Step\s+(\d+)/")
VALID_PPL = re.compile(r"Validation perplexity:\s*([\d.]+)")


def run_onmt(corpus: Path, src: str, tgt: str, work: Path, args: argparse.Namespace) -> dict:
    bindir = args.venvs / "venv_onmt" / "bin"
    nm_run = work / f"nmtkit-{src}-{tgt}"
    out = work / f"onmt-{src}-{tgt}{args.tag and '-' + args.tag}"
    out.mkdir(parents=True, exist_ok=True)
    pieces = work / f"pieces-{src}-{tgt}"
    flags = recipe_flags(corpus, src, tgt, nm_run, args.set)[1::2]
    budget = parse_duration(args.budget) or 0.0
    log = out / "train.log"
    if not args.score_only:
        if not (nm_run / "data" / "manifest.json").exists():
            run_nmtkit_prepare(corpus, src, tgt, work, args)
        export = [sys.executable, str(REPO / "benchmarks" / "export_pieces.py")]
        timed([*export, str(nm_run / "data"), str(pieces)], out / "export.log")
        cfg = onmt_config(RECIPE, pieces, out, flags)
        every = args.onmt_every
        cfg.update(
            train_steps=1_000_000,
            valid_steps=every,
            save_checkpoint_steps=every,
            keep_checkpoint=1000,
            report_every=min(50, every),
            save_model=str(out / "model"),
        )
        (out / "onmt_train.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        for old in out.glob("model_step_*.pt"):
            old.unlink()
        timed(
            [
                str(bindir / "onmt_build_vocab"),
                "-config",
                str(out / "onmt_train.yaml"),
                "-n_sample",
                "-1",
            ],
            out / "vocab.log",
        )
        train_for(
            budget, [str(bindir / "onmt_train"), "-config", str(out / "onmt_train.yaml")], log
        )
    text = log.read_text(encoding="utf-8", errors="replace")
    steps = [int(s) for s in STEP.findall(text)]
    ppls = [float(p) for p in VALID_PPL.findall(text)]
    saved = sorted(int(p.stem.rsplit("_", 1)[1]) for p in out.glob("model_step_*.pt"))
    valid_at = [args.onmt_every * (i + 1) for i in range(len(ppls))]
    # The best validation perplexity whose checkpoint was saved whole (not the one being
    # written when the budget ran out: the newest file is used only if a later step logged).
    usable = [s for s in saved if s != saved[-1] or (steps and max(steps) > s)]
    candidates = [(s, p) for s, p in zip(valid_at, ppls, strict=False) if s in usable]
    if not candidates:
        raise SystemExit(f"no validated checkpoint of OpenNMT-py in {out}; a longer --budget?")
    best_step, best_ppl = min(candidates, key=lambda x: x[1])
    hyp_pieces, hyp = out / "test.pieces", out / f"test.{tgt}"
    translate = [
        str(bindir / "onmt_translate"),
        "-model",
        str(out / f"model_step_{best_step}.pt"),
        "-src",
        str(pieces / "test.src"),
        "-output",
        str(hyp_pieces),
        "-beam_size",
        "5",
        "-batch_size",
        "4096",
        "-batch_type",
        "tokens",
        "-max_length",
        "250",
        "-gpu",
        "-1",
    ]
    seconds = timed(translate, out / "translate.log")
    detok = [ln.replace(" ", "").replace("▁", " ").strip() for ln in hyp_pieces.open()]
    hyp.write_text("".join(line + "\n" for line in detok), encoding="utf-8")
    result = scores(hyp, corpus / f"{TEST}.{tgt}")
    return {
        "toolkit": f"OpenNMT-py {onmt_version(bindir)}",
        "direction": f"{src}-{tgt}",
        "tag": args.tag,
        "set": args.set,
        "threads": THREADS,
        "budget": args.budget,
        "updates": max(steps, default=0),
        "checkpoint_step": best_step,
        "best_valid_ppl": best_ppl,
        "best": {**result, "decode_s": round(seconds, 1)},
        **{k: result[k] for k in ("bleu", "chrf", "bleu_lc")},
    }


def run_nmtkit_prepare(corpus: Path, src: str, tgt: str, work: Path, args: argparse.Namespace):
    flags = recipe_flags(corpus, src, tgt, work / f"nmtkit-{src}-{tgt}", args.set)
    timed([sys.executable, "-m", "nmtkit", "prepare", str(RECIPE), *flags], work / "prepare.log")


def train_for(budget: float, cmd: list[str], log: Path) -> None:
    """Run OpenNMT-py's training and stop it `budget` seconds after its first training step."""
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            [*PIN, *cmd],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env(),
            cwd=REPO,
            start_new_session=True,
        )
    first = None
    while proc.poll() is None:
        time.sleep(2)
        if first is None and "Start training loop" in log.read_text(errors="replace"):
            first = time.perf_counter()
        if first is not None and time.perf_counter() - first >= budget:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
    raise SystemExit(f"onmt_train ended before its budget ({proc.returncode}); see {log}")


def onmt_version(bindir: Path) -> str:
    out = subprocess.run(
        [str(bindir / "python"), "-c", "import onmt; print(onmt.__version__)"],
        capture_output=True,
        text=True,
        env=env(),
    )
    return out.stdout.strip() or "?"


def shown_setting(setting: str) -> str:
    """A `--set KEY=VALUE` as the table shows it: a path outside the repository as KEY's name
    (`train.init_from=INIT_FROM`)."""
    key, _, value = setting.partition("=")
    if "/" not in value:
        return setting
    return f"{key}={shown_path(value, key.rsplit('.', 1)[-1].upper())}"


def render(rows: list[dict[str, Any]], command: str, budget: str) -> str:
    threads = "/".join(sorted({str(r.get("threads", THREADS)) for r in rows}))
    lines = [
        f"Multi30k test2016 (1,000 sentences), {budget} of training on {threads} CPU thread(s) "
        "each, the same SentencePiece pieces (8,000 joint unigram), beam 5. BLEU and chrF: "
        "sacrebleu defaults (cased, 13a); BLEU lc: lowercased. OpenNMT-py translates with its "
        "best-validation-perplexity checkpoint, nmtkit with best.pt (best valid BLEU).",
        "",
        "| direction | toolkit | variant | threads | updates | BLEU | chrF | BLEU lc |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        variant = " ".join(shown_setting(s) for s in r.get("set", [])) or "recipe"
        lines.append(
            f"| {r['direction']} | {r['toolkit']} | {variant} | {r.get('threads', 2)} | "
            f"{r['updates']:,} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['bleu_lc']:.2f} |"
        )
        if "avg" in r:
            a = r["avg"]
            lines.append(
                f"| {r['direction']} | {r['toolkit']} | {variant}, avg.pt | "
                f"{r.get('threads', 2)} | {r['updates']:,} | {a['bleu']:.2f} | {a['chrf']:.2f} | "
                f"{a['bleu_lc']:.2f} |"
            )
    if rows:
        lines += [
            "",
            f"Signatures: `{rows[0]['best']['bleu_signature']}`, "
            f"`{rows[0]['best']['chrf_signature']}`.",
        ]
    lines += ["", "```", command, "```"]
    return "\n".join(lines)


def length_study(corpus: Path, work: Path, direction: str, systems: dict[str, str]) -> None:
    """The length study's headline on real text: the test2016 translations of the runs
    `systems` ({name: run tag}; "" is the recipe's own run), scored by source length with
    `nmtkit evaluate --compare` (the first is the baseline of the significance tests); the
    section between the multi30k markers of docs/length-study.md and its plot."""
    sys.path.insert(0, str(REPO / "scripts"))
    from length_study import REAL_END, REAL_START, bucket_table, findings

    src, tgt = direction.split("-")
    runs = {name: work / f"nmtkit-{direction}{tag and '-' + tag}" for name, tag in systems.items()}
    hyps = [f"{name}={run / f'test.best.pt.{tgt}'}" for name, run in runs.items()]
    recipe = load_recipe(RECIPE)
    plot, report_path = REPO / "docs" / "length-study-multi30k.png", work / "length.json"
    command = [sys.executable, "-m", "nmtkit", "evaluate", "--hyp", hyps[0]]
    for hyp in hyps[1:]:
        command += ["--compare", hyp]
    command += ["--ref", str(corpus / f"{TEST}.{tgt}"), "--src", str(corpus / f"{TEST}.{src}")]
    command += ["--buckets", ",".join(map(str, recipe.evaluate.buckets))]
    timed([*command, "--json", str(report_path), "--plot", str(plot)], work / "length.log")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    rows = ["| system | attention | updates | valid BLEU (greedy, best) | test BLEU | test chrF |"]
    rows.append("|---|---|---:|---:|---:|---:|")
    for name, run in runs.items():
        resolved = load_recipe(run / "recipe.resolved.yaml")
        records = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").open()]
        valid = max(r["bleu"] for r in records if r["kind"] == "valid")
        steps = max(r["step"] for r in records if r["kind"] == "train")
        total = report["overall"][name]
        rows.append(
            f"| {name} | {resolved.model.attention} | {steps:,} | {valid:.1f} | "
            f"{total['bleu']['score']:.1f} | {total['chrf']['score']:.1f} |"
        )
    budget = load_recipe(runs[next(iter(runs))] / "recipe.resolved.yaml").train.max_time or 0
    text = [
        f"## On real text: Multi30k {src}→{tgt} (test2016)",
        "",
        "Written by `benchmarks/multi30k_bench.py --length-study` (kept when the study above is",
        "rerun). Each system is `recipes/multi30k-cpu.yaml` with only `model.attention` changed,",
        f"trained for the same wall clock ({budget / 60:.0f} min on one CPU core each, side by",
        "side), beam 5, best.pt. Buckets fit caption lengths (source words).",
        "",
        f"![BLEU by source length on Multi30k]({plot.name})",
        "",
        *rows,
        "",
        *bucket_table(report, "bleu"),
        "",
        findings(report),
    ]
    path = REPO / "docs" / "length-study.md"
    doc = path.read_text(encoding="utf-8")
    start, end = doc.index(REAL_START), doc.index(REAL_END)
    path.write_text(doc[: start + len(REAL_START)] + "\n" + "\n".join(text) + "\n" + doc[end:])


def _key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    """One row per run: a later row of the same toolkit, direction, tag and threads wins."""
    return row["toolkit"], row["direction"], row.get("tag", ""), row.get("threads", THREADS)


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder with train|valid|test2016.{en,de}")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench" / "multi30k")
    parser.add_argument("--budget", default="30m", help="training wall clock per run")
    parser.add_argument("--directions", nargs="+", default=["en-de", "de-en"])
    parser.add_argument("--toolkits", nargs="+", default=["nmtkit", "onmt"])
    parser.add_argument("--set", action="append", default=[], help="recipe override for both")
    parser.add_argument("--onmt-every", type=int, default=50, help="OpenNMT-py valid/save steps")
    parser.add_argument(
        "--venvs", type=Path, default=Path(os.environ.get("PEERS_VENV_ROOT", "/tmp/peers"))
    )
    parser.add_argument("--score-only", action="store_true", help="reuse the runs in --work")
    parser.add_argument("--tag", default="", help="names this variant's run directories")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per run")
    parser.add_argument("--cpus", help="taskset core list for every command, e.g. 0 or 1")
    parser.add_argument(
        "--render-from",
        type=Path,
        nargs="+",
        help="only write the docs from these results.jsonl files",
    )
    parser.add_argument(
        "--length-study",
        nargs="+",
        metavar="NAME=TAG",
        help="only score the runs NAME=TAG (TAG empty: the recipe's run) by source length "
        "into docs/length-study.md, first direction of --directions",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    THREADS = args.threads
    if args.cpus:
        PIN[:] = ["taskset", "-c", args.cpus]
    if args.render_from:
        every = [json.loads(line) for path in args.render_from for line in path.open()]
        rows = list({_key(r): r for r in every}.values())
        rows.sort(key=lambda r: -r.get("threads", THREADS))  # the 2-thread table first
        command = shown_command("multi30k_bench.py", sys.argv[1:], positional=["CORPUS"])
        update_json(REPO / "docs" / "benchmarks.json", {"multi30k": rows})
        write_section(REPO / "docs" / "benchmarks.md", SECTION, render(rows, command, args.budget))
        return
    args.corpus = args.corpus.resolve()
    if args.length_study:
        systems = dict(item.split("=", 1) for item in args.length_study)
        length_study(args.corpus, args.work.resolve(), args.directions[0], systems)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    if "onmt" in args.toolkits and not (args.venvs / "venv_onmt" / "bin" / "onmt_train").exists():
        peers = REPO.parent / "shared" / "peers"
        installer = [str(peers / "install_peers.sh"), "--locked", "onmt"]
        subprocess.run(
            installer, check=True, env={**os.environ, "PEERS_VENV_ROOT": str(args.venvs)}
        )
    rows = []
    for direction in args.directions:
        src, tgt = direction.split("-")
        for toolkit in args.toolkits:
            runner = run_nmtkit if toolkit == "nmtkit" else run_onmt
            row = runner(args.corpus, src, tgt, args.work.resolve(), args)
            rows.append(row)
            with open(args.work / "results.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(
                json.dumps(
                    {
                        k: row[k]
                        for k in ("toolkit", "direction", "updates", "bleu", "chrf", "bleu_lc")
                    }
                )
            )
    if not args.no_docs:
        command = shown_command("multi30k_bench.py", sys.argv[1:], positional=["CORPUS"])
        update_json(REPO / "docs" / "benchmarks.json", {"multi30k": rows})
        write_section(REPO / "docs" / "benchmarks.md", SECTION, render(rows, command, args.budget))


if __name__ == "__main__":
    main()
