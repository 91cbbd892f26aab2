# Two commands for a fresh machine: `make repro` runs the study, `make test` runs the tests.
# PYTHON=/path/to/python3.12 picks the interpreter (default: the first of python3.13, python3.12,
# python3.11, python3 that TensorFlow 2.21 supports); EXTRAS=s3 adds DVC's S3 remote plugin.
PYTHON ?=
EXTRAS ?=
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
empty :=
STAMP := $(VENV)/.installed$(if $(strip $(EXTRAS)),-$(subst $(empty) $(empty),-,$(strip $(EXTRAS))))
# stages call `python -m src...`: run them with the project's environment first on PATH
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

JOBS ?= auto
SCHEDULER ?= local
SBATCH_ARGS ?=
ARRAY_LIMIT ?=

.PHONY: setup setup-gpu repro study test test-slow test-bench test-all lint format report bench

setup: $(STAMP)  ## create .venv from the pinned dependencies (does nothing when up to date)

$(STAMP): pyproject.toml requirements.lock scripts/setup-venv
	@PYTHON="$(PYTHON)" EXTRAS="$(EXTRAS)" VENV="$(VENV)" bash scripts/setup-venv
	touch $(STAMP)

setup-gpu: setup  ## swap the CPU build of TensorFlow for the CUDA one (Linux, NVIDIA GPU)
	$(BIN)/python -m pip uninstall --quiet -y tensorflow-cpu
	$(BIN)/python -m pip install --quiet "tensorflow[and-cuda]==2.21.0"
	@echo "GPU build installed. Training stays on the CPU until params.yaml says train.device: gpu (docs/gpus.md)."

repro: setup  ## run the whole study (only the stages whose inputs changed), as many runs side by side as the cores allow; JOBS=1 one at a time; REPRO_FLAGS=--pull restores from the remote
	python -m src.running.study --jobs $(JOBS) $(REPRO_FLAGS)

study: setup  ## make repro with options: JOBS=N, SEEDS="42 1 2", SCHEDULER=slurm SBATCH_ARGS="-p gpu --gres=gpu:1"
	python -m src.running.study --jobs $(JOBS) $(if $(SEEDS),--seeds $(SEEDS)) --scheduler $(SCHEDULER) $(if $(SBATCH_ARGS),--sbatch-args "$(SBATCH_ARGS)") $(if $(ARRAY_LIMIT),--array-limit $(ARRAY_LIMIT))

test: setup lint  ## lint, then the test suite without the slow end-to-end runs (a few minutes)
	pytest -m "not slow"

test-slow: setup  ## the slow end-to-end runs: DVC pipelines, SLURM, interrupted training, every model's bytes
	pytest -m "slow and not bench"

test-bench: setup  ## the benchmark tools' own end-to-end runs (they train, like the slow tests)
	pytest -m bench

test-all: test  ## everything, as CI runs it: make test, then the slow and benchmark runs in one session (the workers share them)
	pytest -m slow

lint: setup  ## ruff (style, imports) and mypy (types), as CI runs them
	ruff check .
	ruff format --check .
	mypy

format: setup
	ruff check --fix .
	ruff format .

REF ?= main
report: setup  ## Markdown report of metrics, params and figures against a git ref: make report REF=main
	python -m src.evidence.report --ref $(REF)

ARGS ?= speed
bench: setup  ## benchmarks: make bench ARGS="speed --levers" (speed, accuracy, prepare, verdicts, task, scaling, queue; ARGS="task --help")
	python -m benchmarks $(ARGS)
