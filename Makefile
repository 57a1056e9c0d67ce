# nmtkit — every target installs what it needs into .venv first.
#   make demo                  the whole pipeline on the built-in English->German corpus:
#                              prepare, train, translate the test split, BLEU by length (runs/demo)
#   make test                  fast test suite (CPU); make test-all adds the slow and browser tests
#   make test-browser          the page at / in headless Chromium (apt-get install chromium chromium-driver)
#   make length-study          BLEU by source length, with and without attention -> docs/length-study.md
#   make run RECIPE=path       prepare, train and evaluate any recipe
#   make multi30k-cpu          Multi30k en->de in 30 minutes on a CPU, from the hub, or from local
#                              files: make multi30k-cpu RECIPE_SET="--set data.source.files=DIR"
#   make multi30k-en-de | iwslt2017-de-en | wmt14-en-de-luong   the other real-corpus recipes (need the hub)
#   make bench-multi30k        nmtkit vs OpenNMT-py on ../shared/corpora/multi30k-en-de (hours)
#   make gpu-check             the CUDA path in under 8 minutes on a lent GPU ("no GPU" on a CPU)
#   make TORCH=torch==2.13.0 … take torch from a specific requirement (CI uses the local CPU wheel)

PYTHON ?= python3
TORCH  ?= torch>=2.6
# One environment per interpreter: make test PYTHON=python3.10 builds .venv-python3.10
VENV   ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RECIPE ?= recipes/demo.yaml
RECIPE_SET ?=
# Updates per system in the length study; empty: the recipes' own budget (1,200, ~1 hour on
# 2 CPU cores). A GPU or a bigger machine can afford more: make length-study LENGTH_STUDY_STEPS=20000
LENGTH_STUDY_STEPS ?=
REAL_CORPORA := multi30k-cpu multi30k-en-de iwslt2017-de-en wmt14-en-de-luong

.PHONY: install demo run prepare train test test-slow test-browser test-all check lint typecheck bench bench-peers bench-serve bench-multi30k bench-train-ab bench-train-bf16 gpu-check clean \
	help length-study $(REAL_CORPORA)

help:
	@echo "targets: install demo run RECIPE=path length-study $(REAL_CORPORA) test test-slow test-browser test-all check bench bench-peers bench-serve bench-multi30k bench-train-ab bench-train-bf16 gpu-check clean"

install: $(STAMP)

# Torch comes first and from $(TORCH), so the package's `torch>=2.6` requirement is then
# already satisfied and pip does not go looking for a newer (CUDA, several GB) build. `.[dev]`
# is everything a developer needs: the core, every extra (serve, plot, tensorboard) and the tools.
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The whole pipeline for one recipe: prepare, train, translate the test split(s) and score them.
run: $(STAMP)
	$(BIN)/nmtkit prepare $(RECIPE) $(RECIPE_SET)
	$(BIN)/nmtkit train $(RECIPE) $(RECIPE_SET)
	$(BIN)/nmtkit evaluate $(RECIPE)

demo:
	$(MAKE) --no-print-directory run RECIPE=recipes/demo.yaml

$(REAL_CORPORA):
	$(MAKE) --no-print-directory run RECIPE=recipes/$@.yaml

length-study: $(STAMP)
	$(BIN)/python scripts/length_study.py $(if $(LENGTH_STUDY_STEPS),--steps $(LENGTH_STUDY_STEPS))

prepare: $(STAMP)
	$(BIN)/nmtkit prepare $(RECIPE)

train: $(STAMP)
	$(BIN)/nmtkit train $(RECIPE)

test: $(STAMP)
	$(BIN)/python -m pytest

# The slow tests (marked @pytest.mark.slow: many random kills, 200k-line translate load):
# test-all = test + test-slow.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The page at / in headless Chromium (@pytest.mark.browser; needs Debian's chromium and
# chromium-driver, skipped without them).
test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check nmtkit tests benchmarks scripts
	$(BIN)/ruff format --check nmtkit tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/prepare_bench.py --pairs 200000 1000000 --out docs/benchmarks.md
	test -f runs/demo/checkpoints/best.pt || $(MAKE) demo
	$(BIN)/python benchmarks/train_bench.py --warmup 5 --steps 20 --precisions fp32 bf16
	$(BIN)/python benchmarks/decode_bench.py runs/demo --batch-tokens 1000 4000 16000
	$(BIN)/python benchmarks/ddp_bench.py --steps 100 --nproc 2
	$(MAKE) bench-peers
	$(MAKE) bench-serve

# nmtkit vs OpenNMT-py (../shared/peers, venvs in $(PEERS_VENV_ROOT), installed on first use):
# the same model trained for PEER_STEPS updates by each, then beam-5 and greedy decoding and
# BLEU (~25 min on 2 CPU cores at 1,000 updates).
PEERS_VENV_ROOT ?= /tmp/nmtkit-peers
PEER_STEPS ?= 1000
bench-peers: $(STAMP)
	PEERS_VENV_ROOT=$(PEERS_VENV_ROOT) $(BIN)/python benchmarks/peers_bench.py --steps $(PEER_STEPS) --peers onmt

# Training speed against OpenNMT-py alternated over rounds (OpenNMT-py, nmtkit fp32, nmtkit
# bf16, ...), medians and the range of their ratio (docs/benchmarks.md, train-ab; about 100
# minutes at 1,000 updates; not part of `make bench`).
bench-train-ab: $(STAMP)
	$(BIN)/python benchmarks/train_ab.py --rounds 3 --steps $(PEER_STEPS) --venv-root $(PEERS_VENV_ROOT) --variant fp32:train.precision=fp32 --variant bf16:train.precision=bf16 --out docs/benchmarks.md

# fp32, bf16 autocast and the bf16 copy of `train.precision: bf16`, in turns on the same
# batches of the peers model (docs/benchmarks.md, train-bf16; about 10 minutes).
bench-train-bf16: $(STAMP)
	$(BIN)/python benchmarks/train_bf16.py --work runs/bench/train-bf16 --batches 60 --rounds 2 --out docs/benchmarks.md

# Real text: nmtkit vs OpenNMT-py on Multi30k, 30 min of training per run and
# direction (over 2 hours; not part of `make bench`). CORPORA: the folder with multi30k-en-de/.
CORPORA ?= ../shared/corpora
bench-multi30k: $(STAMP)
	PEERS_VENV_ROOT=$(PEERS_VENV_ROOT) $(BIN)/python benchmarks/multi30k_bench.py $(CORPORA)/multi30k-en-de --work runs/bench/multi30k

# nmtkit serve under load: 1/8/64 clients, batched vs unbatched vs offline, 10,000 checked
# requests (~5 min on 2 CPU cores; needs runs/demo).
bench-serve: $(STAMP)
	test -f runs/demo/checkpoints/best.pt || $(MAKE) demo
	$(BIN)/python benchmarks/serve_load.py runs/demo

# The CUDA path in under 8 minutes on one GPU (tests, training and decoding speed at the
# Marian size, docs section `gpu-check`); on a CPU it says "no GPU" and checks the code at toy size.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --json runs/bench/gpu-check.json

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
