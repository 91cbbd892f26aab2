"""Verdicts about the task (src/evidence/task.py) and exact detectable sizes (stats.detectable):
checked against independent computations and by simulation on the recorded predictions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from src.evidence.simulation import Task, calibrate, draw_study, recorded_correct
from src.evidence.stats import detectable, detectable_ncp
from src.evidence.task import image_noise, task_t
from src.ground.paths import PREDICTIONS_DIR
from tests.conftest import ROOT

HOLM_LEVELS = [0.05 / k for k in range(1, 11)]  # every level Holm uses over a 5-model report's 10 pairs


def _power_by_integration(ncp: float, df: float, alpha: float) -> float:
    """P(|T| > t_crit) for T = (Z + ncp) / sqrt(V / df), V ~ chi2(df): integrated over V, without
    scipy's noncentral t."""
    critical = stats.t.ppf(1 - alpha / 2, df)

    def given(v: float) -> float:
        scaled = critical * np.sqrt(v / df)
        return (stats.norm.sf(scaled - ncp) + stats.norm.cdf(-scaled - ncp)) * stats.chi2.pdf(v, df)

    return float(integrate.quad(given, 0, np.inf, limit=200)[0])


@pytest.mark.parametrize("n", range(2, 31))
def test_paired_and_prediction_sizes_have_80_percent_power_at_every_holm_level(n: int) -> None:
    for alpha in HOLM_LEVELS:
        paired = detectable("paired", n, n, alpha)  # in sd of the gaps: ncp = size * sqrt(n)
        assert _power_by_integration(paired * np.sqrt(n), n - 1, alpha) == pytest.approx(0.8, abs=0.01)
        one = detectable("prediction", 1, n, alpha)  # ncp = size / sqrt(1 + 1/n), n - 1 df
        assert _power_by_integration(one / np.sqrt(1 + 1 / n), n - 1, alpha) == pytest.approx(0.8, abs=0.01)


def test_the_statsmodels_non_solutions_are_gone() -> None:
    """n = 3: statsmodels gave 4.23 at alpha 0.0167 and 4.09 at 0.0128 (power 60% and 48%)."""
    assert detectable("paired", 3, 3, 0.0167) == pytest.approx(5.662, abs=0.001)
    assert detectable("paired", 3, 3, 0.0128) == pytest.approx(6.469, abs=0.001)


@pytest.mark.parametrize("df", [1.3, 2.0, 4.7, 12.0, 80.0])
def test_the_task_test_size_has_80_percent_power_at_fractional_df(df: float) -> None:
    for alpha in (0.05, 0.01, 0.005):
        assert _power_by_integration(detectable_ncp(df, alpha), df, alpha) == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize("n_a, n_b", [(2, 2), (3, 3), (3, 5), (10, 10)])
def test_welch_sizes_have_80_percent_power_by_an_independent_simulation(n_a: int, n_b: int) -> None:
    rng = np.random.default_rng(7)  # another seed than the one the size was solved with
    for alpha in (0.05, 0.05 / 3, 0.005):
        shift = detectable("welch", n_a, n_b, alpha)
        a = rng.standard_normal((40_000, n_a)) + shift
        b = rng.standard_normal((40_000, n_b))
        p = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
        assert np.mean(p < alpha) == pytest.approx(0.8, abs=0.01)


@pytest.fixture(scope="module")
def task() -> Task:
    """The task as the recorded run's predictions show it: the two CNNs' per-image accuracy."""
    runs = recorded_correct(ROOT / PREDICTIONS_DIR)
    assert len(runs) >= 4, "the recorded run's predictions of the two CNNs"
    return Task.from_runs(runs)


def test_the_standard_error_matches_the_spread_of_simulated_studies(task: Task) -> None:
    """An independent computation of what the estimate's standard error means: over 400 studies
    with no true difference, the sd of the estimated gap equals the typical estimated se."""
    rng = np.random.default_rng(3)
    gaps, errors = [], []
    for _ in range(400):
        study = draw_study(task, 2, 3, 10_000, rng)
        test = task_t(study[0], study[1])
        assert test is not None
        gaps.append(test.difference)
        errors.append(test.se)
    assert np.std(gaps, ddof=1) == pytest.approx(np.sqrt(np.mean(np.square(errors))), rel=0.12)
    floor = image_noise(study[0], study[1])
    assert 0.002 < floor < np.mean(errors)  # the test images' share: a floor that seeds never lower


@pytest.mark.parametrize("seeds, studies", [(3, 300), (5, 200), (10, 120)])
def test_no_difference_is_called_at_most_5_percent_of_the_time(task: Task, seeds: int, studies: int) -> None:
    """Null studies on the recorded task: one comparison and a whole 5-model report each call a
    difference at most 5% of the time, and 95% intervals cover the truth (within the simulation's
    own error; the benchmark runs thousands: python -m benchmarks verdicts --task)."""
    result = calibrate(task, seeds, studies, seed=seeds)
    error = np.sqrt(0.05 * 0.95 / studies)
    assert result.false_calls <= 0.05 + 2.5 * error
    assert result.family_false_calls <= 0.05 + 2.5 * error
    assert abs(result.coverage - 0.95) <= 0.015 + 2.5 * error
    assert 0.002 < result.seed_sd < 0.006  # seed noise the size of the CNNs' (0.3-0.4 pts)


def test_paired_runs_judge_the_layout_of_their_gaps() -> None:
    """Same model, same seeds: the 100 images a change turned right at every seed are a gain on
    the task far beyond both noises; the gaps' layout sees it."""
    rng = np.random.default_rng(0)
    base = rng.random((3, 2000)) < 0.7
    flipped = base.copy()
    flipped[:, :100] = True
    paired = task_t(flipped, base, paired=True)
    assert paired is not None and paired.kind == "task"
    assert paired.difference == pytest.approx(float(flipped.mean() - base.mean()))
    assert paired.p < 1e-3 and paired.interval()[0] > 0
    assert task_t(flipped[:1], base[:1], paired=True) is None  # one seed: no seed noise to measure


def test_sides_tested_on_different_images_are_refused() -> None:
    with pytest.raises(ValueError, match="2000 and 1999 images"):
        task_t(np.ones((2, 2000), bool), np.ones((2, 1999), bool))


@pytest.mark.parametrize("paired", [False, True])
def test_runs_without_any_noise_give_no_test_rather_than_an_error(paired: bool) -> None:
    """Every run right on the same images (tiny test sets, short runs): nothing to judge against."""
    same = np.tile(np.arange(40) % 3 == 0, (3, 1))
    assert task_t(same, same, paired=paired) is None
    assert task_t(same[:1], same) is None
