"""The ranking at every training budget: one long run holds every shorter one.

Each run records its test predictions after every epoch (reported, never used to choose), and
a k-epoch run is the first k epochs of a longer one (tests/test_resume.py). So at each budget
in params.yaml's `compare.budgets` the models trained that long are ranked by mean test accuracy
over seeds, and each adjacent pair of the ranking gets the task-level verdict (`verdicts.judge`),
Holm-corrected over that budget's pairs.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from src.evidence.verdicts import family, judge

# per model: {seed: (epochs, images) bool array of which test images each epoch's model got right}
ByEpoch = dict[str, dict[int, np.ndarray]]


def reached(correct: ByEpoch, budget: int) -> list[str]:
    """The models every run of which trained at least `budget` epochs."""
    return [model for model, runs in correct.items() if min(run.shape[0] for run in runs.values()) >= budget]


def usable_budgets(correct: ByEpoch, budgets: list[int]) -> list[int]:
    """The budgets at least two models reached: a ranking needs two."""
    return [budget for budget in budgets if len(reached(correct, budget)) >= 2]


def ranking_at(correct: ByEpoch, budget: int) -> list[dict[str, Any]]:
    """The models that trained `budget` epochs, ranked by mean test accuracy after that many,
    each row with its verdict against the next one down."""
    at = {
        model: {seed: runs[budget - 1] for seed, runs in correct[model].items()}
        for model in reached(correct, budget)
    }
    accuracy = {model: [float(right.mean()) for right in seeds.values()] for model, seeds in at.items()}
    order = sorted(at, key=lambda model: -float(np.mean(accuracy[model])))
    judged = family([judge(at[upper], at[lower]) for upper, lower in itertools.pairwise(order)])
    rows = []
    for rank, model in enumerate(order, 1):
        row: dict[str, Any] = {
            "budget": budget,
            "rank": rank,
            "model": model,
            "accuracy": round(float(np.mean(accuracy[model])), 6),
            "sd": round(float(np.std(accuracy[model], ddof=1)), 6) if len(accuracy[model]) > 1 else None,
        }
        if rank < len(order):
            verdict = judged[rank - 1]
            interval = verdict.interval
            row |= {
                "next": order[rank],
                "difference": round(verdict.difference, 6),
                "low": None if interval is None else round(interval[0], 6),
                "high": None if interval is None else round(interval[1], 6),
                "p_holm": None if verdict.p is None else float(f"{verdict.p:.6g}"),
                "verdict": verdict.verdict(),
            }
        rows.append(row)
    return rows


def rankings(correct: ByEpoch, budgets: list[int]) -> list[dict[str, Any]]:
    return [row for budget in usable_budgets(correct, budgets) for row in ranking_at(correct, budget)]


def markdown(rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    """The budget table: per budget, the ranking and each step's verdict; a line under it
    names the budgets some models were not trained for."""
    lines = [
        "| epochs | rank | model | test accuracy (mean ± sd) | ahead of the next by | interval | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        sd = f" ± {row['sd']:.4f}" if row["sd"] is not None else ""
        gap = f"{100 * row['difference']:+.2f} pts" if "difference" in row else ""
        low, high = row.get("low"), row.get("high")
        interval = f"[{100 * low:.2f}, {100 * high:.2f}]" if low is not None and high is not None else ""
        lines.append(
            f"| {row['budget']} | {row['rank']} | {names[row['model']]} | {row['accuracy']:.4f}{sd} | "
            f"{gap} | {interval} | {row.get('verdict', '')} |"
        )
    return "\n".join(lines) + _left_out(rows, names)


def _left_out(rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    everyone = {row["model"] for row in rows}
    ranked: dict[int, set[str]] = {}
    for row in rows:
        ranked.setdefault(row["budget"], set()).add(row["model"])
    fewer: dict[tuple[str, ...], list[str]] = {}  # the models ranked -> the budgets that ranked only them
    for budget, models in ranked.items():
        if models != everyone:
            shown = tuple(name for model, name in names.items() if model in models)
            fewer.setdefault(shown, []).append(str(budget))
    notes = [f"at {_listed(at)} epochs only {_listed(list(models))}" for models, at in fewer.items()]
    return f"\n\nRanked {'; '.join(notes)}: the others trained fewer epochs." if notes else ""


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
