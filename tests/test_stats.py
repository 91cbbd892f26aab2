"""Intervals and tests with known answers (src/evidence/stats.py); the verdicts: tests/test_verdicts.py."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from src.evidence import stats

IMAGES = 10_000


def _predictions(accuracy: float, images: int = IMAGES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 10, images)
    wrong = (y_true + rng.integers(1, 10, images)) % 10
    return y_true, np.where(rng.random(images) < accuracy, y_true, wrong)


def _changed(correct: np.ndarray, gains: int, losses: int, seed: int = 2) -> np.ndarray:
    """Another run's answers: `gains` images it gets right that `correct` got wrong, `losses`
    the other way round; the net difference is (gains - losses) / images."""
    rng = np.random.default_rng(seed)
    other = correct.copy()
    other[rng.choice(np.flatnonzero(~correct), gains, replace=False)] = True
    other[rng.choice(np.flatnonzero(correct), losses, replace=False)] = False
    return other


def test_macro_scores_match_scikit_learn() -> None:
    y_true, y_pred = _predictions(0.6)
    y_pred[y_pred == 3] = 4  # class 3 never predicted: scikit-learn's zero_division=0 case
    expected = precision_recall_fscore_support(
        y_true, y_pred, average="macro", labels=list(range(10)), zero_division=0
    )[:3]
    np.testing.assert_allclose(stats.macro_scores(y_true, y_pred, 10), expected, rtol=1e-12)
    stacked = stats.macro_scores(np.stack([y_true, y_true]), np.stack([y_pred, y_true]), 10)
    assert stacked.shape == (3, 2) and np.allclose(stacked[:, 1], 1.0)


def test_mcnemar_counts_only_the_images_two_runs_disagree_on() -> None:
    y_true, y_pred = _predictions(0.7)
    base = y_true == y_pred
    assert stats.mcnemar_p(base, base) == 1.0  # no discordant pairs (b + c = 0)
    # two runs that disagree on 1,000 of 10,000 images, as trained models do
    assert stats.mcnemar_p(_changed(base, 600, 400), base) < 1e-6
    assert stats.mcnemar_p(_changed(base, 510, 490), base) > 0.5
    assert stats.mcnemar_p(_changed(base, 20, 0), base) < 1e-5  # 20 to 0 is not noise


def test_each_t_test_is_scipys_and_its_interval_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    from scipy.stats import ttest_ind, ttest_rel

    a, b = [0.61, 0.64, 0.62, 0.66], [0.60, 0.61, 0.615, 0.62]
    paired, welch = stats.paired_t(a, b), stats.welch_t(a, b)
    assert paired.p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-12)
    assert welch.p == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    single = stats.prediction_t(0.70, b)
    assert single.df == 3 and single.difference == pytest.approx(0.70 - np.mean(b))
    assert stats.prediction_t(0.70, b, single_first=False).difference == pytest.approx(np.mean(b) - 0.70)
    for test in (paired, welch, single):
        for alpha in (0.05, 0.01, 0.005):
            low, high = test.interval(alpha)
            assert (low > 0 or high < 0) == (test.p < alpha)
        at_p = test.interval(test.p)  # the interval at level p just touches 0
        assert min(abs(at_p[0]), abs(at_p[1])) < 1e-12


def test_no_spread_gives_no_test() -> None:
    assert stats.paired_t([0.61, 0.62, 0.63], [0.60, 0.61, 0.62]) is None  # one image per 10,000 x 100
    assert stats.welch_t([0.61, 0.61], [0.60, 0.60]) is None
    assert stats.prediction_t(0.7, [0.6, 0.6, 0.6]) is None
    assert stats.welch_t([0.61, 0.62], [0.60, 0.60]) is not None  # one side's spread is enough


def test_detectable_sizes_are_statsmodels_where_exact_and_welchs_is_larger_than_the_pooled_tests() -> None:
    from statsmodels.stats.power import TTestIndPower, TTestPower

    assert stats.detectable("paired", 5, 5) == pytest.approx(
        TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8)
    )
    pooled = TTestIndPower().solve_power(nobs1=3, ratio=1, alpha=0.05, power=0.8)
    assert stats.detectable("welch", 3, 3) > pooled  # Welch's test has fewer degrees of freedom
    assert stats.detectable("welch", 3, 3) == stats.detectable("welch", 3, 3)  # seeded: the same every time
    assert stats.detectable("prediction", 1, 3) > stats.detectable("welch", 3, 3)
    assert stats.detectable("paired", 3, 3, alpha=0.005) > stats.detectable("paired", 3, 3)


def test_probability_of_outperforming_and_holms_levels() -> None:
    same = [0.60, 0.62, 0.61]
    assert stats.prob_outperform(same, same) == 0.5  # exchangeable: ties count half
    assert stats.prob_outperform([0.70, 0.71], [0.60, 0.61, 0.62]) == 1.0
    assert stats.prob_outperform([0.61, 0.63], [0.60, 0.62]) == 0.75
    assert stats.holm_levels([0.04, 0.001, 0.02]) == pytest.approx([0.05, 0.05 / 3, 0.025])
    assert stats.holm([0.04, 0.001, 0.02]) == pytest.approx([0.04, 0.003, 0.04])


def test_holm_gives_statsmodels_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from statsmodels.stats.multitest import multipletests

    # statsmodels' Holm runs gc.collect() on every call (why src/evidence/stats.py computes it itself):
    # 800 of them take minutes in a test worker that holds TensorFlow, and change no value
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 10):
        for _ in range(200):
            p = rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 3)
            p[rng.integers(m)] = p[0]  # ties too
            assert stats.holm(list(p)) == list(multipletests(p, method="holm")[1])


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


def test_seed_interval() -> None:
    assert stats.seed_interval([0.5]) is None
    low, high = stats.seed_interval([0.70, 0.71, 0.69])
    assert low < 0.70 < high
