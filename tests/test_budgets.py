"""The ranking at every training budget (src/evidence/budgets.py), on synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest

from src.evidence import budgets
from src.evidence.verdicts import family, judge

IMAGES = 2000
NAMES = {"weak": "Weak", "strong": "Strong", "long": "Long"}


def _runs(accuracy_by_epoch: list[float], seeds: tuple[int, ...] = (1, 2, 3)) -> dict[int, np.ndarray]:
    """Per seed, an (epochs, images) array of right answers near the given accuracies."""
    runs = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        runs[seed] = np.stack([rng.random(IMAGES) < accuracy for accuracy in accuracy_by_epoch])
    return runs


@pytest.fixture(scope="module")
def correct() -> budgets.ByEpoch:
    # "long" trained 4 epochs, the others 2: budget 4 has one model, budget 3 none of the others
    return {
        "weak": _runs([0.3, 0.4]),
        "strong": _runs([0.5, 0.7]),
        "long": _runs([0.2, 0.5, 0.75, 0.8]),
    }


def test_budgets_need_two_models_that_trained_that_long(correct: budgets.ByEpoch) -> None:
    assert budgets.reached(correct, 2) == ["weak", "strong", "long"]
    assert budgets.reached(correct, 3) == ["long"]
    assert budgets.usable_budgets(correct, [1, 2, 3, 4]) == [1, 2]


def test_a_budget_ranks_only_the_models_that_reached_it() -> None:
    correct = {"weak": _runs([0.3, 0.4]), "strong": _runs([0.5, 0.7, 0.72]), "long": _runs([0.2, 0.5, 0.75])}
    rows = budgets.rankings(correct, [2, 3])
    at_three = [row for row in rows if row["budget"] == 3]
    assert [row["model"] for row in at_three] == ["long", "strong"]
    assert [row["rank"] for row in at_three] == [1, 2]
    table = budgets.markdown(rows, NAMES)
    assert table.endswith("Ranked at 3 epochs only Strong and Long: the others trained fewer epochs.")
    everyone = budgets.markdown([row for row in rows if row["budget"] == 2], NAMES)
    assert "Ranked" not in everyone


def test_each_step_carries_the_holm_corrected_task_verdict(correct: budgets.ByEpoch) -> None:
    rows = budgets.ranking_at(correct, 2)
    assert [row["model"] for row in rows] == ["strong", "long", "weak"]  # 0.7, 0.5, 0.4
    at = {model: {seed: runs[1] for seed, runs in correct[model].items()} for model in correct}
    expected = family([judge(at["strong"], at["long"]), judge(at["long"], at["weak"])])
    for row, verdict in zip(rows, expected, strict=False):
        assert row["next"] == {"strong": "long", "long": "weak"}[row["model"]]
        assert row["difference"] == pytest.approx(verdict.difference, abs=1e-6)
        assert row["p_holm"] == pytest.approx(verdict.p, rel=1e-5)
        assert row["verdict"] == verdict.verdict()
    accuracy = np.mean([runs[1].mean() for runs in correct["strong"].values()])
    assert rows[0]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert "next" not in rows[-1]
