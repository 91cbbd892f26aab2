"""Statistics with known answers (src/stats.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from src import stats

IMAGES = 10_000


def _predictions(accuracy: float, images: int = IMAGES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 10, images)
    wrong = (y_true + rng.integers(1, 10, images)) % 10
    return y_true, np.where(rng.random(images) < accuracy, y_true, wrong)


def _planted(correct: np.ndarray, points: float, seed: int = 1) -> np.ndarray:
    """`correct` with `points` percentage points more images right, the flips spread at random."""
    rng = np.random.default_rng(seed)
    flipped = correct.copy()
    wrong = np.flatnonzero(~correct)
    flipped[rng.choice(wrong, round(points / 100 * len(correct)), replace=False)] = True
    return flipped


def test_macro_scores_match_scikit_learn() -> None:
    y_true, y_pred = _predictions(0.6)
    y_pred[y_pred == 3] = 4  # class 3 never predicted: scikit-learn's zero_division=0 case
    expected = precision_recall_fscore_support(
        y_true, y_pred, average="macro", labels=list(range(10)), zero_division=0
    )[:3]
    np.testing.assert_allclose(stats.macro_scores(y_true, y_pred, 10), expected, rtol=1e-12)
    stacked = stats.macro_scores(np.stack([y_true, y_true]), np.stack([y_pred, y_true]), 10)
    assert stacked.shape == (3, 2) and np.allclose(stacked[:, 1], 1.0)


def test_identical_predictions_give_p_one_and_a_zero_width_difference() -> None:
    y_true, y_pred = _predictions(0.7)
    correct = y_true == y_pred
    assert stats.mcnemar_p(correct, correct) == 1.0  # no discordant pairs (b + c = 0)
    assert stats.difference_interval(correct, correct) == (0.0, 0.0)
    [pair] = stats.compare_pairs({"a": correct[None], "b": correct[None]})
    assert pair["p"] == pair["p_holm"] == 1.0 and not pair["significant"]


def _changed(correct: np.ndarray, gains: int, losses: int, seed: int = 2) -> np.ndarray:
    """Another model's answers: `gains` images it gets right that `correct` got wrong, `losses`
    the other way round; the net difference is (gains - losses) / images."""
    rng = np.random.default_rng(seed)
    other = correct.copy()
    other[rng.choice(np.flatnonzero(~correct), gains, replace=False)] = True
    other[rng.choice(np.flatnonzero(correct), losses, replace=False)] = False
    return other


def test_a_planted_two_point_difference_is_significant_and_a_tenth_of_it_is_not() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    # two models that disagree on 1,000 of 10,000 images, as trained models do
    two_points, tenth = _changed(base, 600, 400), _changed(base, 510, 490)
    assert two_points.mean() - base.mean() == pytest.approx(0.02)
    assert stats.mcnemar_p(two_points, base) < 1e-6
    low, high = stats.difference_interval(two_points, base)
    assert 0.01 < low < 0.02 < high < 0.03
    assert tenth.mean() - base.mean() == pytest.approx(0.002)
    assert stats.mcnemar_p(tenth, base) > 0.5
    low, high = stats.difference_interval(tenth, base)
    assert low < 0 < high
    # McNemar counts only the images the two disagree on: 20 to 0 is not noise
    assert stats.mcnemar_p(_changed(base, 20, 0), base) < 1e-5


def test_pairs_are_holm_corrected() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    pairs = stats.compare_pairs(
        {"a": _planted(base, 2.0)[None], "b": base[None], "c": _planted(base, 0.05)[None]}
    )
    assert [(pair["a"], pair["b"]) for pair in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    ordered = sorted(pair["p"] for pair in pairs)
    holm = sorted(pair["p_holm"] for pair in pairs)
    assert holm[0] == pytest.approx(min(1, 3 * ordered[0]))
    assert [pair["significant"] for pair in pairs] == [True, True, False]


def test_wilson_interval_covers_the_truth_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    truth, images, trials = 0.7, 10_000, 1000
    covered = 0
    for correct in rng.binomial(images, truth, trials):
        low, high = stats.accuracy_interval(int(correct), images)
        covered += low <= truth <= high
    assert 0.93 <= covered / trials <= 0.97


def test_bootstrap_interval_of_macro_f1_covers_the_truth_at_about_its_nominal_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stats, "RESAMPLES", 400)
    y_true, y_pred = _predictions(0.6, images=400_000, seed=99)
    truth = stats.macro_scores(y_true, y_pred, 10)[2]  # the F1 of the whole "population"
    trials, covered = 120, 0
    for trial in range(trials):
        sample = np.random.default_rng(trial).integers(0, len(y_true), 2000)
        low, high = stats.score_intervals(y_true[sample], y_pred[sample], 10)["f1"]
        covered += low <= truth <= high
    assert 0.88 <= covered / trials <= 0.99


def test_intervals_are_deterministic() -> None:
    y_true, y_pred = _predictions(0.65)
    assert stats.score_intervals(y_true, y_pred, 10) == stats.score_intervals(y_true, y_pred, 10)


def test_several_seeds_use_the_seed_level_test_and_both_sources_of_noise() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    seeds_a = np.stack([_planted(base, 2.0, seed) for seed in (1, 2, 3)])
    seeds_b = np.stack([_planted(base, 0.5, seed) for seed in (4, 5, 6)])
    [pair] = stats.compare_pairs({"a": seeds_a, "b": seeds_b})
    assert pair["test"] == "paired t over seeds" and pair["difference"] == pytest.approx(0.015)
    assert pair["low"] < 0.015 < pair["high"]
    assert stats.seed_test_p([0.70, 0.71, 0.69], [0.70, 0.71, 0.69]) == 1.0
    assert stats.seed_test_p([0.70, 0.72, 0.69], [0.69, 0.70, 0.69]) > 0.05  # noisy: within noise
    assert stats.seed_interval([0.5]) is None
    low, high = stats.seed_interval([0.70, 0.71, 0.69])
    assert low < 0.70 < high


def test_verdicts_read_plainly() -> None:
    assert stats.verdict(0.02, 0.003) == "better, p = 0.003"
    assert stats.verdict(-0.02, 0.0001) == "worse, p < 0.001"
    assert stats.verdict(0.002, 0.41) == "within noise (p = 0.410)"
