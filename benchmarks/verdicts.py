"""How often the report's verdicts cry wolf, and how often they catch a real change (A/A, A/B).

    python -m benchmarks verdicts [--models mlp_l2 simple_cnn] [--seeds 20] [--splits 10]
                                  [--pool 12000] [--epochs 5] [--draws 1000] [--out FILE]
                                  [--project DIR] [--from FILE]
    (or: make bench ARGS="verdicts --seeds 20")

Trains each model many times, each run in a fresh process with the train stage's own model,
settings and trainer (src.learning.training), on a fixed, stratified pool of `--pool` of the 50,000
CIFAR-10 training images (the project's data/raw tarball: run `dvc repro download` first),
split into train and validation by the prepare stage's own function with 10% for validation,
as the pipeline does, and tested on all 10,000 test images:

- `--seeds` runs with training seeds 1, 2, ... (split seed 42): the pool for the A/A and A/B
  comparisons. Each run records which test images it got right after `epochs - 1` epochs (A)
  and after `epochs` (B): with every draw seeded, a run of `epochs: 4` is exactly the first
  four epochs of a run of `epochs: 5`, so B is the real change "one more epoch" of every run
  and A the unchanged params.
- `--splits` runs with split seeds 1, 2, ... (training seed 42): how much the data split moves
  the score, beside how much the training seed does.

Then it applies the report's own verdict code (src.evidence.verdicts.judge) to `--draws` random draws of
runs per procedure: A/A, two disjoint sets of seeds of the same params (a verdict of "better"
or "worse" is a false alarm), and A/B, the same seeds before and after the change (the
change's direction is known; a verdict of "better" is a catch). Procedures: one run each
(McNemar, the test set's noise only; the report no longer uses it for a verdict), one run
against 3 seeds (the t prediction interval), and N against N seeds (paired t over the same
seeds, Welch t over disjoint ones) for N = 2, 3, 5. Draws reuse the runs, so the rates are
estimates whose uncertainty is larger than a binomial one over draws: with 20 seeds, read
them to about ±3 points.

`--from FILE` analyses the JSON lines of an earlier run without training; `--out` keeps them
(written as each run finishes, so an interrupted benchmark resumes where it stopped).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, choose_kernels, run_worker
from benchmarks.verdict_rates import SPLIT_SEED, TRAIN_SEED, analyse, table

POOL_SEED = 0  # which images form the pool (fixed)


def _pack(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(correct).tobytes()).decode()


def pool_splits(
    data: dict[str, tuple[np.ndarray, np.ndarray]], pool: int, split_seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A fixed stratified pool of the training images, split 90/10 into train and validation by
    the prepare stage's own `split` with `split_seed`; the test set whole."""
    from sklearn.model_selection import train_test_split

    from src.stages.prepare import split

    x, y = data["train"]
    if pool < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=pool, stratify=y, random_state=POOL_SEED)
    return split({"train": (x, y), "test": data["test"]}, val_size=len(y) // 10, seed=split_seed)


def worker(model_id: str, seed: int, split_seed: int, pool: int, epochs: int) -> dict[str, Any]:
    """Train one run in this fresh process, as the train stage does; test after the last two epochs."""
    from src.ground.params import load_params

    params = load_params()
    choose_kernels("pipeline", params.train)  # before TensorFlow loads, as the train stage does
    from src.learning.callbacks import epoch_lines
    from src.learning.training import fit, prepare_model
    from src.stages.download import TARGET
    from src.stages.prepare import read_tarball

    if not TARGET.is_file():
        raise SystemExit(f"{TARGET} not found: run `dvc repro download` first")
    splits = pool_splits(read_tarball(TARGET, params.data.images_per_batch), pool, split_seed)
    y_test = splits["test"][1]
    config = params.models[model_id].model_copy(update={"epochs": epochs})
    model = prepare_model(config, params.train, seed, params.train.threads)
    tested: dict[int, np.ndarray] = {}
    testing = _test_after(epochs - 1, model, splits["test"], params.train.eval_batch_size, tested)
    started = time.perf_counter()
    fit(
        model,
        config,
        params.train,
        splits["train"],
        splits["val"],
        seed,
        [testing, epoch_lines(epochs, sys.stderr)],
    )
    return {
        "model": model_id,
        "seed": seed,
        "split_seed": split_seed,
        "train_images": len(splits["train"][1]),
        "test_images": len(y_test),
        "accuracy": {str(epoch): round(float(correct.mean()), 6) for epoch, correct in tested.items()},
        "correct": {str(epoch): _pack(correct) for epoch, correct in tested.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _test_after(first: int, model: Any, test: tuple[np.ndarray, np.ndarray], batch: int, tested: dict) -> Any:
    """A Keras callback that records, from epoch `first` on, which test images the model gets
    right (inference only: it draws no random numbers)."""
    import keras

    x_test, y_test = test

    class TestAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch + 1 >= first:
                predicted = model.predict(x_test, batch_size=batch, verbose=0)
                tested[epoch + 1] = np.argmax(predicted, axis=1) == y_test

    return TestAfter()


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks verdicts", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--models", nargs="+", default=["mlp_l2", "simple_cnn"], help="model ids of params.yaml"
    )
    parser.add_argument("--seeds", type=int, default=20, help="training seeds per model (1..N)")
    parser.add_argument("--splits", type=int, default=10, help="split seeds per model (1..N), 0: none")
    parser.add_argument("--pool", type=int, default=12000, help="training images drawn from the 50,000")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of B; A is one fewer")
    parser.add_argument("--draws", type=int, default=1000, help="random draws per procedure")
    parser.add_argument("--out", type=Path, help="JSON lines of the runs (resumes from it)")
    parser.add_argument("--from", dest="source", type=Path, help="analyse these JSON lines; train nothing")
    parser.add_argument("--project", type=Path, default=ROOT, help="project directory (default: this one)")
    parser.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--split-seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (A is one epoch fewer)")
    return args


def _train_missing(args: argparse.Namespace, records: list[dict], out: Path) -> list[dict]:
    """Train the runs of the plan that `records` lacks, appending each to `out` as it ends; the
    plan's records."""
    plan = [(m, s, SPLIT_SEED) for m in args.models for s in range(1, args.seeds + 1)]
    plan += [(m, TRAIN_SEED, k) for m in args.models for k in range(1, args.splits + 1) if k != SPLIT_SEED]
    done = {
        (r["model"], r["seed"], r["split_seed"])
        for r in records
        if r["train_images"] == args.pool - args.pool // 10
    }
    todo = [run for run in plan if run not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    for number, (model_id, seed, split_seed) in enumerate(todo, 1):
        record = run_worker(
            "verdicts",
            *("--worker", model_id, "--seed", str(seed), "--split-seed", str(split_seed)),
            *("--pool", str(args.pool), "--epochs", str(args.epochs), "--project", str(args.project)),
        )  # from this repository (its code), working in the project (params, data)
        with out.open("a") as lines:
            lines.write(json.dumps(record) + "\n")
        records.append(record)
        accuracy = ", ".join(f"{value:.4f} after {epoch}" for epoch, value in record["accuracy"].items())
        run = f"{model_id} seed {seed} split {split_seed}"
        print(f"[{number}/{len(todo)}] {run}: {accuracy} ({record['seconds']:.0f} s)", flush=True)
    wanted = set(plan)
    return [r for r in records if (r["model"], r["seed"], r["split_seed"]) in wanted]


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    out = (args.out or args.source or Path("reports/verdicts.jsonl")).resolve()
    os.chdir(args.project)
    if args.worker:
        print(json.dumps(worker(args.worker, args.seed, args.split_seed, args.pool, args.epochs)))
        return
    records = _load(out)
    if args.source is None:
        records = _train_missing(args, records, out)
    results = analyse(records, args.draws)
    print(table(results), end="")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
