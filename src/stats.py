"""How sure the comparison is: intervals and paired tests on the saved test predictions.

Every number here comes from the test predictions each training run saves
(`reports/predictions/<id>-<seed>.csv`), so it can be recomputed without retraining, and every
resampling is seeded, so the same predictions give the same bytes.

- One model, one seed: a Wilson 95% interval for accuracy (`scipy.stats.binomtest`), and a
  percentile bootstrap over the test images for macro precision, recall and F1
  (`scipy.stats.bootstrap`, paired: each resample keeps images with their own labels).
- Two models, one seed, same test images: the exact McNemar test on the images that one
  gets right and the other wrong (Dietterich 1998; `statsmodels`), and a paired bootstrap
  interval of the accuracy difference.
- Several seeds: the seed-to-seed spread (mean, standard deviation, t interval of the mean),
  and between two models a paired t-test over seeds (each seed trains both models) with a
  two-level bootstrap interval of the mean accuracy difference that resamples both seeds and
  test images, so it carries both sources of noise (Bouthillier et al. 2021).
- Many pairs at once: Holm's correction for the number of comparisons.

docs/statistics.md says why these methods and what they assume.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

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


def difference_interval(correct_a: np.ndarray, correct_b: np.ndarray, offset: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% interval of accuracy(a) - accuracy(b) over the same test images."""
    difference = correct_a.astype(np.int8) - correct_b.astype(np.int8)
    if not difference.any():
        return 0.0, 0.0
    interval = _percentile_bootstrap((difference,), lambda d, axis=-1: d.mean(axis=axis), offset)
    return float(interval.low), float(interval.high)


def seed_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """t interval of the mean of per-seed values (None with one seed)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return None
    spread = values.std(ddof=1) / np.sqrt(len(values))
    if spread == 0:
        return float(values.mean()), float(values.mean())
    low, high = t.interval(CONFIDENCE, len(values) - 1, loc=values.mean(), scale=spread)
    return float(low), float(high)


def two_level_interval(correct_a: np.ndarray, correct_b: np.ndarray, offset: int = 0) -> tuple[float, float]:
    """Bootstrap 95% interval of the mean accuracy difference over seeds, resampling seeds and
    test images together. `correct_*` are (seeds, images) arrays, row s from seed s of each model."""
    rng = _rng(offset)
    difference = correct_a.astype(np.int8) - correct_b.astype(np.int8)
    seeds, images = difference.shape
    means = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 200):
        count = min(200, RESAMPLES - start)
        picked_seeds = rng.integers(0, seeds, size=(count, seeds))
        picked_images = rng.integers(0, images, size=(count, images))
        rows = difference[picked_seeds]  # (count, seeds, images)
        means[start : start + count] = np.take_along_axis(rows, picked_images[:, None, :], axis=2).mean(
            axis=(1, 2)
        )
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def seed_test_p(accuracy_a: Sequence[float], accuracy_b: Sequence[float]) -> float:
    """Paired t-test over seeds (seed s of one model against seed s of the other)."""
    from scipy.stats import ttest_rel

    difference = np.asarray(accuracy_a, dtype=float) - np.asarray(accuracy_b, dtype=float)
    if not difference.any():
        return 1.0
    if np.allclose(difference, difference[0], rtol=0, atol=1e-12):  # no spread: t is infinite
        return 0.0
    return float(ttest_rel(accuracy_a, accuracy_b).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels multipletests), in the given order."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def compare_pairs(correct: dict[str, np.ndarray], order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every pair of models: accuracy difference, its 95% interval, p-value, Holm-adjusted p.

    `correct[model]` is a (seeds, images) boolean array, seeds in the same order for every model.
    One seed: exact McNemar and a paired bootstrap over images. Several: a paired t-test over
    seeds and a bootstrap over seeds and images.
    """
    names = list(order or correct)
    rows = []
    for index, (a, b) in enumerate(combinations(names, 2)):
        first, second = correct[a], correct[b]
        difference = float(first.mean() - second.mean())
        if first.shape[0] == 1:
            p = mcnemar_p(first[0], second[0])
            low, high = difference_interval(first[0], second[0], offset=index)
            method = "McNemar (exact)"
        else:
            p = seed_test_p(first.mean(axis=1), second.mean(axis=1))
            low, high = two_level_interval(first, second, offset=index)
            method = "paired t over seeds"
        rows.append(
            {"a": a, "b": b, "difference": difference, "low": low, "high": high, "p": p, "test": method}
        )
    for row, adjusted in zip(rows, holm([row["p"] for row in rows]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = adjusted < ALPHA
    return rows


def format_p(p: float) -> str:
    """A p-value as printed in the reports: three decimals, or "< 0.001"."""
    return f"{p:.3f}" if p >= 0.001 else "< 0.001"


def verdict(difference: float, p: float, alpha: float = ALPHA) -> str:
    """One plain word for a change: 'better', 'worse' or 'within noise', with its p-value."""
    shown = f"p = {format_p(p)}" if p >= 0.001 else f"p {format_p(p)}"
    if p >= alpha or difference == 0:
        return f"within noise ({shown})"
    return f"{'better' if difference > 0 else 'worse'}, {shown}"
