"""How the task-level verdicts behave where the truth is known, and the detectable sizes fixed.

    python -m benchmarks task [--studies 2000] [--seeds 3 5 10]   (or: make bench ARGS="task")

1. Null studies simulated from the recorded run's predictions (src/evidence/simulation.py:
   five equally good models on a task whose per-image difficulty is the two CNNs'; each study
   draws its 10,000 test images afresh): how often one comparison calls a difference (p < 0.05),
   how often a whole 5-model report calls any (Holm over its 10 pairs), and how often the 95%
   interval covers the true difference, 0. The old seed-only test is shown beside it.
2. The detectable sizes of the paired test with 3 seeds at each level Holm uses in a 5-model
   report: statsmodels' solver against the exact noncentral t, with the power each really has.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import ROOT


def _task() -> Any:
    from src.evidence.simulation import Task, recorded_correct
    from src.ground.paths import PREDICTIONS_DIR

    return Task.from_runs(recorded_correct(ROOT / PREDICTIONS_DIR))


def _seed_only_false_calls(task: Any, seeds: int, studies: int) -> float:
    """The seed-only test (the test set held fixed) on the same kind of null studies."""
    from src.evidence.simulation import draw_study
    from src.evidence.verdicts import judge

    rng = np.random.default_rng(seeds)
    calls = 0
    for _ in range(studies):
        study = draw_study(task, 2, seeds, 10_000, rng)
        judged = judge({s: study[0, s] for s in range(seeds)}, {s: study[1, s] for s in range(seeds)})
        calls += judged.images_p is not None and judged.images_p < 0.05
    return calls / studies


def simulation_table(studies: int, seed_counts: list[int]) -> str:
    from src.evidence.simulation import calibrate

    task = _task()
    lines = [
        "| seeds | studies | false calls, one comparison | false calls, 5-model report (Holm) | "
        "95% interval coverage | seed-only test's false calls | seed sd (pts) | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seeds in seed_counts:
        started = time.perf_counter()
        result = calibrate(task, seeds, studies, seed=seeds)
        seed_only = _seed_only_false_calls(task, seeds, studies)
        error = 100 * np.sqrt(0.05 * 0.95 / studies)
        lines.append(
            f"| {seeds} | {studies} | {100 * result.false_calls:.1f}% (± {error:.1f}) | "
            f"{100 * result.family_false_calls:.1f}% | {100 * result.coverage:.1f}% | "
            f"{100 * seed_only:.1f}% | {100 * result.seed_sd:.2f} | {time.perf_counter() - started:.0f} |"
        )
    return "\n".join(lines)


def detectable_table() -> str:
    from scipy.stats import nct, t
    from statsmodels.stats.power import TTestPower

    from src.evidence.stats import detectable

    def power(size: float, n: int, alpha: float) -> float:
        critical, ncp = t.ppf(1 - alpha / 2, n - 1), size * np.sqrt(n)
        return float(nct.sf(critical, n - 1, ncp) + nct.sf(critical, n - 1, -ncp))

    lines = [
        "| Holm level (alpha) | statsmodels (sd) | its power | exact (sd) | its power |",
        "|---|---|---|---|---|",
    ]
    for k in range(1, 11):
        alpha = 0.05 / k
        old = float(TTestPower().solve_power(nobs=3, alpha=alpha, power=0.8))
        new = detectable("paired", 3, 3, alpha)
        lines.append(
            f"| {alpha:.4f} | {old:.3f} | {100 * power(old, 3, alpha):.1f}% | {new:.3f} | "
            f"{100 * power(new, 3, alpha):.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks task", description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000, help="null studies per seed count")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    args = parser.parse_args(argv)
    print("Null studies (no true difference on the task), verdicts as compare gives them:\n")
    print(simulation_table(args.studies, args.seeds))
    print("\nDetectable size of the paired test with 3 seeds (in sd of the per-seed gaps):\n")
    print(detectable_table())
