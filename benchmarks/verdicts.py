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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, choose_kernels, run_worker

SPLIT_SEED = 42  # the pipeline's `seed`: the split of the seed runs
TRAIN_SEED = 42  # the training seed of the split runs
POOL_SEED = 0  # which images form the pool (fixed)
REFERENCE_SEEDS = 3  # "one run against N seeds": N, the recorded run's seeds
POWER_DRAWS = 200  # A/A draws whose detectable difference is computed (median reported)


def _pack(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(correct).tobytes()).decode()


def _unpack(text: str, images: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:images].astype(bool)


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
    import keras

    from src.learning.callbacks import epoch_lines
    from src.learning.training import fit, prepare_model
    from src.stages.download import TARGET
    from src.stages.prepare import read_tarball

    if not TARGET.is_file():
        raise SystemExit(f"{TARGET} not found: run `dvc repro download` first")
    splits = pool_splits(read_tarball(TARGET, params.data.images_per_batch), pool, split_seed)
    (x_test, y_test) = splits["test"]
    config = params.models[model_id].model_copy(update={"epochs": epochs})
    model = prepare_model(config, params.train, seed, params.train.threads)
    tested: dict[int, np.ndarray] = {}

    class TestAfter(keras.callbacks.Callback):  # inference only: draws no random numbers
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch + 1 >= epochs - 1:
                predicted = model.predict(x_test, batch_size=params.train.eval_batch_size, verbose=0)
                tested[epoch + 1] = np.argmax(predicted, axis=1) == y_test

    started = time.perf_counter()
    fit(
        model,
        config,
        params.train,
        splits["train"],
        splits["val"],
        seed,
        [TestAfter(), epoch_lines(epochs, sys.stderr)],
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


# --- analysis: the report's verdicts on draws of runs -------------------------------------


def _called(judgement: Any) -> bool:
    from src.evidence.stats import ALPHA

    return judgement.p is not None and judgement.p < ALPHA and judgement.difference != 0


def _mcnemar_called(after: np.ndarray, before: np.ndarray) -> bool:
    """McNemar's verdict between two runs (what one run a side once got; the test set's noise only)."""
    from src.evidence.stats import ALPHA, mcnemar_p

    return mcnemar_p(after, before) < ALPHA and after.mean() != before.mean()


Draw = Callable[[], tuple[bool, Any]]  # one simulated comparison: (called, its judgement)


def _tally(name: str, a_a: Draw, a_b: Draw, draws: int, detectable: bool) -> dict[str, Any]:
    """How often `a_a` calls a verdict (false alarms) and `a_b` calls "better" (catches)."""
    alarms = catches = 0
    sizes = []
    for draw in range(draws):
        called, judgement = a_a()
        alarms += called
        if detectable and draw < POWER_DRAWS and judgement.detectable is not None:  # slow: a sample
            sizes.append(judgement.detectable)
        catches += a_b()[0]
    return {
        "procedure": name,
        "false_alarms": alarms / draws,
        "catches": catches / draws,
        "detectable_points": round(100 * float(np.median(sizes)), 2) if sizes else None,
    }


def _one_run_procedures(
    before: list[np.ndarray], after: list[np.ndarray], pick: Callable[[int], np.ndarray]
) -> list[tuple[str, Draw, Draw, bool]]:
    """One run after against one run before (McNemar), and against REFERENCE_SEEDS seeds."""
    from src.evidence.verdicts import judge

    def one_each_aa() -> tuple[bool, Any]:
        i, j = pick(2)
        return _mcnemar_called(before[i], before[j]), judge({0: before[i]}, {1: before[j]})

    def one_each_ab() -> tuple[bool, Any]:
        (i,) = pick(1)
        judgement = judge({0: after[i]}, {0: before[i]})
        return _mcnemar_called(after[i], before[i]) and judgement.difference > 0, judgement

    def against(source: list[np.ndarray]) -> Draw:
        def draw() -> tuple[bool, Any]:
            chosen = pick(REFERENCE_SEEDS + 1)
            judgement = judge({int(chosen[0]): source[chosen[0]]}, {int(s): before[s] for s in chosen[1:]})
            return _called(judgement) and (source is before or judgement.difference > 0), judgement

        return draw

    return [
        ("one run each, McNemar (test set only)", one_each_aa, one_each_ab, False),
        (
            f"one run against {REFERENCE_SEEDS} seeds (t prediction interval)",
            against(before),
            against(after),
            True,
        ),
    ]


def _seed_set_procedures(
    before: list[np.ndarray], after: list[np.ndarray], pick: Callable[[int], np.ndarray], n: int
) -> list[tuple[str, Draw, Draw, bool]]:
    """n seeds after against n before: disjoint seeds (Welch) and the same seeds (paired)."""
    from src.evidence.verdicts import judge

    def welch(source: list[np.ndarray]) -> Draw:
        def draw() -> tuple[bool, Any]:
            chosen = pick(2 * n)
            judgement = judge(
                {int(s): source[s] for s in chosen[:n]}, {int(s): before[s] for s in chosen[n:]}
            )
            return _called(judgement) and (source is before or judgement.difference > 0), judgement

        return draw

    def paired_aa() -> tuple[bool, Any]:
        chosen = pick(2 * n)  # nothing changed: two seed sets of the same params, paired by position
        judgement = judge(
            {k: before[s] for k, s in enumerate(chosen[:n])}, {k: before[s] for k, s in enumerate(chosen[n:])}
        )
        return _called(judgement), judgement

    def paired_ab() -> tuple[bool, Any]:
        chosen = pick(n)  # the same seeds before and after, as in a pull request
        judgement = judge({int(s): after[s] for s in chosen}, {int(s): before[s] for s in chosen})
        return _called(judgement) and judgement.difference > 0, judgement

    return [
        (f"{n} against {n} seeds, Welch t (disjoint seeds)", welch(before), welch(after), True),
        (f"{n} against {n} seeds, paired t (same seeds)", paired_aa, paired_ab, True),
    ]


def rates(
    before: list[np.ndarray], after: list[np.ndarray], draws: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Per procedure: how often a verdict is called in A/A draws (false alarms) and how often
    "better" in A/B draws (catches). `before[i]`/`after[i]`: run i before and after the change."""
    seeds = len(before)

    def pick(count: int) -> np.ndarray:
        return rng.choice(seeds, size=count, replace=False)

    procedures = _one_run_procedures(before, after, pick)
    for n in (2, 3, 5):
        if 2 * n <= seeds:
            procedures += _seed_set_procedures(before, after, pick, n)
    return [_tally(name, a_a, a_b, draws, detectable) for name, a_a, a_b, detectable in procedures]


def analyse(records: list[dict[str, Any]], draws: int) -> dict[str, Any]:
    """The false-alarm and catch rates per model and procedure, and the seed and split spreads."""
    results: dict[str, Any] = {}
    for model_id in dict.fromkeys(record["model"] for record in records):
        mine = [r for r in records if r["model"] == model_id]
        seed_runs = sorted((r for r in mine if r["split_seed"] == SPLIT_SEED), key=lambda r: r["seed"])
        split_runs = sorted((r for r in mine if r["seed"] == TRAIN_SEED), key=lambda r: r["split_seed"])
        if not seed_runs:
            continue
        last = max(seed_runs[0]["accuracy"], key=int)
        first = str(int(last) - 1)
        images = seed_runs[0]["test_images"]
        before = [_unpack(r["correct"][first], images) for r in seed_runs]
        after = [_unpack(r["correct"][last], images) for r in seed_runs]
        gains = [100 * (a.mean() - b.mean()) for a, b in zip(after, before, strict=True)]
        rng = np.random.default_rng(20261203)
        results[model_id] = {
            "seeds": len(seed_runs),
            "epochs": f"{first} -> {last}",
            "train_images": seed_runs[0]["train_images"],
            "accuracy_before": _mean_sd([100 * b.mean() for b in before]),
            "accuracy_after": _mean_sd([100 * a.mean() for a in after]),
            "change_points": _mean_sd(gains),
            "change_up_at_seeds": f"{sum(g > 0 for g in gains)}/{len(gains)}",
            "split_spread_points": _mean_sd([100 * r["accuracy"][first] for r in split_runs])
            if len(split_runs) > 1
            else None,
            "split_runs": len(split_runs),
            "procedures": rates(before, after, draws, rng) if len(seed_runs) >= 4 else [],
        }
    return results


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 2), "sd": round(float(np.std(values, ddof=1)), 2)}


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per procedure, false alarms and catches per model."""
    lines = []
    for model_id, result in results.items():
        before, after, change = (
            result[key] for key in ("accuracy_before", "accuracy_after", "change_points")
        )
        head = (
            f"{model_id}: {result['seeds']} seeds, epochs {result['epochs']}, "
            f"{result['train_images']:,} training images; "
            f"accuracy {_shown(before)} -> {_shown(after)} points; "
            f"change {change['mean']:+.2f} ± {change['sd']:.2f} (up at {result['change_up_at_seeds']} seeds)"
        )
        if result["split_spread_points"]:
            head += f"; {result['split_runs']} splits at one seed: {_shown(result['split_spread_points'])}"
        lines.append("\n" + head)
        lines.append("\n| procedure | false alarms (A/A) | catches (A/B) | detects above (median) |")
        lines.append("|---|---|---|---|")
        for row in result["procedures"]:
            size = f"±{row['detectable_points']:.1f} pts" if row["detectable_points"] is not None else ""
            alarms, catches = 100 * row["false_alarms"], 100 * row["catches"]
            lines.append(f"| {row['procedure']} | {alarms:.1f}% | {catches:.1f}% | {size} |")
    return "\n".join(lines) + "\n"


def _shown(spread: dict[str, float]) -> str:
    return f"{spread['mean']:.2f} ± {spread['sd']:.2f}"


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
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
    out = (args.out or args.source or Path("reports/verdicts.jsonl")).resolve()
    os.chdir(args.project)
    if args.worker:
        print(json.dumps(worker(args.worker, args.seed, args.split_seed, args.pool, args.epochs)))
        return
    records = _load(out)
    if args.source is None:
        plan = [(m, s, SPLIT_SEED) for m in args.models for s in range(1, args.seeds + 1)]
        plan += [
            (m, TRAIN_SEED, k) for m in args.models for k in range(1, args.splits + 1) if k != SPLIT_SEED
        ]
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
        wanted = {(m, s, k) for m, s, k in plan}
        records = [r for r in records if (r["model"], r["seed"], r["split_seed"]) in wanted]
    results = analyse(records, args.draws)
    print(table(results), end="")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
