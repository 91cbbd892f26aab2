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
    [pair] = stats.compare_pairs({"a": {42: correct, 1: correct}, "b": {42: correct, 1: correct}})
    assert pair["p"] == pair["p_holm"] == 1.0 and not pair["significant"]
    assert pair["low"] == pair["high"] == 0.0


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


def _seeds(base: np.ndarray, points: float, seeds: tuple[int, ...]) -> dict[int, np.ndarray]:
    return {seed: _planted(base, points + seed % 3 * 0.3, seed) for seed in seeds}


def test_pairs_are_holm_corrected_over_seed_level_tests() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    seeds = (1, 2, 3)
    # b and c: gains of 0.3, 0.6, 0.0 and 0.5, 0.2, 0.4 points at seeds 1, 2, 3: no consistent gap
    noisy = {
        seed: _planted(base, points, seed + 10) for seed, points in zip(seeds, (0.5, 0.2, 0.4), strict=True)
    }
    pairs = stats.compare_pairs({"a": _seeds(base, 4.0, seeds), "b": _seeds(base, 0.0, seeds), "c": noisy})
    assert [(pair["a"], pair["b"]) for pair in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert all(pair["test"] == "paired t over 3 seeds" for pair in pairs)
    ordered = sorted(pair["p"] for pair in pairs)
    holm = sorted(pair["p_holm"] for pair in pairs)
    assert holm[0] == pytest.approx(min(1, 3 * ordered[0]))
    assert [pair["significant"] for pair in pairs] == [True, True, False]
    assert pairs[0]["verdict"].startswith("better, p ")


def test_one_seed_per_side_never_claims_a_difference() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    far = _planted(base, 10.0)  # ten points ahead: McNemar alone would say p < 1e-100
    judged = stats.judge({42: far}, {42: base}, spread_hint=0.016)
    assert judged.p is None and judged.mcnemar_p < 1e-100
    assert judged.verdict() == (
        "no verdict: one seed per side cannot tell a change from retraining noise; "
        "retraining moves it by ±1.6 pts"
    )
    [pair] = stats.compare_pairs({"a": {42: far}, "b": {42: base}})
    assert pair["p_holm"] is None and not pair["significant"] and pair["verdict"].startswith("no verdict")


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
    after = {seed: _planted(base, 2.0, seed) for seed in (1, 2, 3)}
    before = {seed: _planted(base, 0.5, seed) for seed in (1, 2, 3)}
    judged = stats.judge(after, before)
    assert judged.test == "paired t over 3 seeds" and judged.difference == pytest.approx(0.015)
    assert judged.low < 0.015 < judged.high
    assert judged.verdict() == "better, p < 0.001"  # the same gain at every seed
    other = {seed: _planted(base, 0.5, seed) for seed in (4, 5)}
    assert stats.judge(after, other).test == "Welch t over seeds (3 against 2)"
    assert stats.seed_interval([0.5]) is None
    low, high = stats.seed_interval([0.70, 0.71, 0.69])
    assert low < 0.70 < high


def _runs(accuracies: np.ndarray, rng: np.random.Generator, first_seed: int = 0, images: int = 400) -> dict:
    """Simulated runs: per seed, which of `images` test images were right, at that seed's accuracy."""
    return {first_seed + k: rng.random(images) < accuracy for k, accuracy in enumerate(accuracies)}


SPREAD = 0.02  # seed standard deviation of the simulated accuracy, as for the MLPs


@pytest.mark.parametrize(
    ("n_after", "n_before", "same_seeds"),
    [(3, 3, True), (3, 3, False), (1, 3, False), (2, 2, True), (5, 5, False)],
)
def test_with_no_true_difference_verdicts_are_called_at_their_nominal_rate(
    n_after: int, n_before: int, same_seeds: bool
) -> None:
    rng = np.random.default_rng(n_after * 10 + n_before + same_seeds)
    trials, called = 600, 0
    for _ in range(trials):
        after = _runs(rng.normal(0.6, SPREAD, n_after), rng)
        before = _runs(rng.normal(0.6, SPREAD, n_before), rng, first_seed=0 if same_seeds else 100)
        judged = stats.judge(after, before, details=False)
        called += not judged.verdict().startswith("within noise")
    assert called / trials <= 0.05 + 0.02  # 5% nominal; 0.9 points is one binomial sd at 600 trials
    assert called > 0  # a test that can never call anything would pass the line above


@pytest.mark.parametrize(("n", "same_seeds"), [(3, False), (5, True)])
def test_a_planted_difference_of_four_seed_deviations_is_found(n: int, same_seeds: bool) -> None:
    rng = np.random.default_rng(n)
    trials, found = 200, 0
    for _ in range(trials):
        after = _runs(rng.normal(0.6 + 4 * SPREAD, SPREAD, n), rng, images=4000)
        before = _runs(rng.normal(0.6, SPREAD, n), rng, first_seed=0 if same_seeds else 100, images=4000)
        found += stats.judge(after, before, details=False).verdict().startswith("better")
    assert found / trials >= 0.8


def test_the_detectable_difference_is_statsmodels_power_and_is_found_four_times_in_five() -> None:
    from statsmodels.stats.power import TTestIndPower, TTestPower

    welch = stats.detectable_difference(3, 3, SPREAD, paired=False)
    assert welch == pytest.approx(
        TTestIndPower().solve_power(nobs1=3, ratio=1, alpha=0.05, power=0.8) * SPREAD
    )
    paired = stats.detectable_difference(5, 5, SPREAD, paired=True)
    assert paired == pytest.approx(TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * SPREAD)
    one_against_three = stats.detectable_difference(1, 3, SPREAD, paired=False)
    assert one_against_three > welch > paired > 0
    assert stats.detectable_difference(1, 1, SPREAD, paired=False) is None
    # at exactly that difference, the paired test over 5 seeds finds it about 80% of the time
    rng = np.random.default_rng(7)
    trials, found = 400, 0
    for _ in range(trials):
        gaps = rng.normal(paired, SPREAD, 5)
        found += (
            stats.judge(
                _runs(0.6 + gaps, rng, images=100_000),
                _runs(np.full(5, 0.6), rng, images=100_000),
                details=False,
            )
            .verdict()
            .startswith("better")
        )
    assert 0.7 <= found / trials <= 0.9


def test_probability_of_outperforming() -> None:
    same = [0.60, 0.62, 0.61]
    assert stats.prob_outperform(same, same)[0] == 0.5  # exchangeable: ties count half
    p, low, high = stats.prob_outperform([0.70, 0.71, 0.72], [0.60, 0.61, 0.62])
    assert (p, low, high) == (1.0, 1.0, 1.0)
    p, low, high = stats.prob_outperform([0.61, 0.63, 0.60, 0.62], [0.60, 0.62, 0.61, 0.63])
    assert low <= p <= high and 0.3 < p < 0.7


def test_within_noise_says_what_the_seeds_could_have_seen() -> None:
    rng = np.random.default_rng(3)
    before = _runs(np.array([0.60, 0.63, 0.59]), rng, images=10_000)
    after = _runs(np.array([0.61, 0.62, 0.60]), rng, images=10_000)
    verdict = stats.judge(after, before).verdict()
    assert verdict.startswith("within noise (p = ") and "; 3 seeds detect changes above ±" in verdict
    single = stats.judge(_runs(np.array([0.615]), rng, images=10_000), before).verdict()
    assert "one run against 3 seeds detects changes above ±" in single
