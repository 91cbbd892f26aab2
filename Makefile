# Two commands for a fresh machine: `make repro` runs the study, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# stages call `python -m src...`: run them with the project's environment first on PATH
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

JOBS ?= 1

.PHONY: setup setup-gpu repro study test test-fast lint format report bench

setup: $(STAMP)  ## create .venv from the pinned dependencies (does nothing when up to date)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	@# the dependencies of pyproject.toml (the stages run from the repository; nothing to package)
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -c requirements.lock -r $(VENV)/requirements.txt
	touch $(STAMP)

setup-gpu: setup  ## swap the CPU build of TensorFlow for the CUDA one (Linux, NVIDIA GPU)
	$(BIN)/python -m pip uninstall --quiet -y tensorflow-cpu
	$(BIN)/python -m pip install --quiet "tensorflow[and-cuda]==2.21.0"

repro: setup  ## run the whole study (only the stages whose inputs changed); REPRO_FLAGS=--pull restores from the remote
	dvc repro $(REPRO_FLAGS)

study: setup  ## the study with JOBS training runs side by side (same bytes): make study JOBS=2 SEEDS="42 1 2"
	python -m src.study --jobs $(JOBS) $(if $(SEEDS),--seeds $(SEEDS))

test: setup lint  ## lint, then the whole test suite (end-to-end DVC runs included)
	pytest

test-fast: setup  ## the suite without the slow end-to-end tests
	pytest -m "not slow"

lint: setup
	ruff check .
	ruff format --check .

format: setup
	ruff check --fix .
	ruff format .

REF ?= main
report: setup  ## Markdown report of metrics, params and figures against a git ref: make report REF=main
	python -m src.report --ref $(REF)

ARGS ?= speed
bench: setup  ## benchmarks: make bench ARGS="speed --levers" (speed, accuracy, prepare; ARGS="speed --help")
	python -m benchmarks $(ARGS)
