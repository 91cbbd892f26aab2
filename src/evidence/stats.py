"""Intervals and tests on the saved test predictions and per-seed scores, every resampling
seeded: Wilson and bootstrap intervals, t intervals over seeds, paired/Welch/prediction t,
McNemar, exact detectable sizes (noncentral t), P(A > B), Holm.
Details: docs/internals.md#stats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

Numbers = Sequence[float] | np.ndarray  # per-seed scores
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
RESAMPLES = 2000
RANDOM_SEED = 20261201  # the bootstrap's own seed: fixed, so reports are byte-identical on rerun


def _rng(offset: int = 0) -> np.random.Generator:
    return np.random.default_rng(RANDOM_SEED + offset)


def macro_scores(y_true: np.ndarray, y_pred: np.ndarray, classes: int, axis: int = -1) -> np.ndarray:
    """Macro precision, recall and F1 over `classes` classes, along `axis`, for any leading shape.

    The same definitions as scikit-learn's precision_recall_fscore_support(average="macro",
    labels=range(classes), zero_division=0), vectorized over resamples: returns an array of
    shape (3, *leading).
    """
    y_true, y_pred = np.moveaxis(y_true, axis, -1), np.moveaxis(y_pred, axis, -1)
    leading, size = y_true.shape[:-1], y_true.shape[-1]
    rows = int(np.prod(leading, dtype=np.int64))
    codes = (np.arange(rows)[:, None] * classes * classes) + (
        y_true.reshape(rows, size) * classes + y_pred.reshape(rows, size)
    )
    confusion = np.bincount(codes.ravel(), minlength=rows * classes * classes).reshape(rows, classes, classes)
    true_positive = np.diagonal(confusion, axis1=1, axis2=2).astype(float)
    predicted = confusion.sum(axis=1)  # column sums: images predicted as each class
    actual = confusion.sum(axis=2)  # row sums: images of each class
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(predicted + actual > 0, 2 * true_positive / (predicted + actual), 0.0)
    scores = np.stack([precision.mean(axis=1), recall.mean(axis=1), f1.mean(axis=1)])
    return scores.reshape(3, *leading)


def accuracy_interval(correct: int, total: int) -> tuple[float, float]:
    """Wilson score interval for a proportion (here: accuracy on `total` test images)."""
    from scipy.stats import binomtest

    interval = binomtest(correct, total).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


def _percentile_bootstrap(data: tuple[np.ndarray, ...], statistic: Any, offset: int = 0) -> Any:
    from scipy.stats import bootstrap

    return bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        batch=200,  # keeps the resampled label arrays at a few MB
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=_rng(offset),
    ).confidence_interval


def score_intervals(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, tuple[float, float]]:
    """95% intervals of one run's test scores: Wilson for accuracy, paired bootstrap for the macro scores."""
    intervals = {"accuracy": accuracy_interval(int((y_true == y_pred).sum()), len(y_true))}
    for index, name in enumerate(("precision", "recall", "f1")):
        interval = _percentile_bootstrap(
            (y_true, y_pred),
            lambda t, p, axis=-1, index=index: macro_scores(t, p, classes, axis)[index],
        )
        intervals[name] = (float(interval.low), float(interval.high))
    return intervals


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p-value of two classifiers on the same images (1.0 when they never disagree)."""
    from statsmodels.stats.contingency_tables import mcnemar

    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((~correct_a & correct_b).sum())
    if only_a + only_b == 0:
        return 1.0
    both = int((correct_a & correct_b).sum())
    neither = int((~correct_a & ~correct_b).sum())
    return float(mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue)


def seed_interval(per_seed: Sequence[float]) -> tuple[float, float] | None:
    """t interval of the mean of per-seed values (None with one seed)."""
    from scipy.stats import t

    values = np.asarray(per_seed, dtype=float)
    if len(values) < 2:
        return None
    spread = values.std(ddof=1) / np.sqrt(len(values))
    if spread == 0:
        return float(values.mean()), float(values.mean())
    low, high = t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=spread)
    return float(low), float(high)


# --- tests of a difference between two sets of runs ---------------------------------------

POWER = 0.8  # the power at which `detectable` is quoted
SIMULATIONS = 20_000  # draws behind Welch's power (seeded: the same sizes every time)


@dataclass(frozen=True)
class TTest:
    """A t-test of a difference: the estimate, its standard error and degrees of freedom. Its
    p-value and the interval it inverts come from the same t distribution, so the interval at
    level 1 - alpha excludes 0 exactly when p < alpha."""

    kind: str  # "paired", "welch" or "prediction" (one run against N)
    difference: float
    se: float
    df: float

    @property
    def p(self) -> float:
        from scipy.stats import t

        return float(2 * t.sf(abs(self.difference) / self.se, self.df))

    def interval(self, alpha: float = ALPHA) -> tuple[float, float]:
        from scipy.stats import t

        half = float(t.ppf(1 - alpha / 2, self.df)) * self.se
        return self.difference - half, self.difference + half


def _no_spread(se: float, difference: float) -> bool:
    """A standard error that is zero beyond float rounding: nothing to judge the gap against."""
    return not se > 1e-12 * max(1.0, abs(difference))


def paired_t(a: Numbers, b: Numbers) -> TTest | None:
    """Paired t over seeds (a[i] and b[i] share a seed); None where every gap is the same."""
    gaps = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = float(gaps.std(ddof=1) / np.sqrt(len(gaps)))
    return None if _no_spread(se, gaps.mean()) else TTest("paired", float(gaps.mean()), se, len(gaps) - 1)


def welch_t(first: Numbers, second: Numbers) -> TTest | None:
    """Welch's t over two independent sets of seeds; None where neither side has any spread."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if _no_spread(se, a.mean() - b.mean()):
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return TTest("welch", float(a.mean() - b.mean()), se, float(df))


def prediction_t(single: float, others: Numbers, single_first: bool = True) -> TTest | None:
    """One new run against N: is it outside their seed distribution? (The t prediction interval:
    N - 1 degrees of freedom.) None where the N runs have no spread."""
    many = np.asarray(others, dtype=float)
    se = float(many.std(ddof=1) * np.sqrt(1 + 1 / len(many)))
    difference = float(single - many.mean()) * (1 if single_first else -1)
    return None if _no_spread(se, difference) else TTest("prediction", difference, se, len(many) - 1)


@lru_cache(maxsize=4096)
def detectable_ncp(df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The noncentrality at which the two-sided t-test with `df` degrees of freedom at level
    `alpha` rejects with probability `power` (noncentral t, solved exactly): the smallest true
    difference it finds that often, in standard errors."""
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    critical = float(t.ppf(1 - alpha / 2, df))

    def shortfall(ncp: float) -> float:
        # the far-side tail as the near side of -ncp: scipy's nct.cdf there returns NaN far out
        return float(nct.sf(critical, df, ncp) + nct.sf(critical, df, -ncp)) - power

    high = 1.0
    while shortfall(high) < 0:  # scipy's nct turns to NaN far out: bracket from below
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-10))


@lru_cache(maxsize=256)
def detectable(kind: str, n_a: int, n_b: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference, in seed standard deviations, that the two-sided test of this
    kind finds with `power` at level `alpha`, with n_a and n_b runs (equal spread on both sides;
    for "paired", the spread of the per-seed gaps). Paired and prediction: the exact noncentral
    t (statsmodels' solver returns non-solutions at some small-sample levels); Welch: simulated."""
    if kind == "paired":  # mean gap / (s / sqrt(n)): noncentral t, n - 1 df, ncp = delta sqrt(n)
        return detectable_ncp(n_a - 1, alpha, power) / float(np.sqrt(n_a))
    if kind == "prediction":  # (x - mean) / (s sqrt(1 + 1/N)): N - 1 df, ncp = delta / sqrt(1 + 1/N)
        many = max(n_a, n_b)
        return detectable_ncp(many - 1, alpha, power) * float(np.sqrt(1 + 1 / many))
    return _welch_detectable(n_a, n_b, alpha, power)


@lru_cache(maxsize=64)
def _welch_detectable(n_a: int, n_b: int, alpha: float, power: float) -> float:
    """Welch's test has no closed-form power: simulate it (seeded), and bisect on the shift."""
    from scipy.stats import t

    rng = _rng(1000 * n_a + n_b)
    a, b = rng.standard_normal((SIMULATIONS, n_a)), rng.standard_normal((SIMULATIONS, n_b))
    va, vb = a.var(axis=1, ddof=1) / n_a, b.var(axis=1, ddof=1) / n_b
    se = np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    critical = t.ppf(1 - alpha / 2, df)
    gap = a.mean(axis=1) - b.mean(axis=1)
    low, high = 0.0, 100.0
    for _ in range(50):
        shift = (low + high) / 2
        found = np.mean(np.abs(gap + shift) / se > critical)
        low, high = (shift, high) if found < power else (low, shift)
    return (low + high) / 2


def prob_outperform(a: Numbers, b: Numbers) -> float:
    """P(A > B): the share of all pairs (a run of A, a run of B) in which A scores higher, ties
    counting half (the Mann-Whitney estimate; 0.5: exchangeable, 1: A always ahead). With a few
    seeds it rests on few pairs and has no honest interval: the reports say how many."""
    gaps = np.asarray(a, dtype=float)[:, None] - np.asarray(b, dtype=float)[None, :]
    return float((gaps > 0).mean() + 0.5 * (gaps == 0).mean())


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the given order: the k-th smallest times (m - k + 1), made
    monotone, capped at 1. The values of statsmodels' `multipletests(method="holm")` (a test
    holds them equal), which runs `gc.collect()` on every call: 0.2 s in a process that holds
    TensorFlow, and the verdict simulations call it thousands of times."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p))))
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(steps, 1.0)
    return [float(value) for value in adjusted]


def holm_levels(p_values: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """The level Holm's procedure tests each hypothesis at: alpha / (m - rank + 1), rank by p."""
    order = np.argsort(p_values, kind="stable")
    levels = np.empty(len(p_values))
    levels[order] = alpha / (len(p_values) - np.arange(len(p_values)))
    return [float(level) for level in levels]


def format_p(p: float) -> str:
    """A p-value as printed in the reports: three decimals, or "< 0.001"."""
    return f"{p:.3f}" if p >= 0.001 else "< 0.001"
