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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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


def two_level_interval(
    correct_a: np.ndarray, correct_b: np.ndarray, paired: bool = True, offset: int = 0
) -> tuple[float, float]:
    """Bootstrap 95% interval of mean accuracy(a) - mean accuracy(b) over seeds, resampling seeds
    and test images together (Bouthillier et al. 2021). `correct_*` are (seeds, images) arrays on
    the same test images. Paired: row s of each is seed s, and a resample draws the same seeds
    on both sides; otherwise each side's seeds are drawn on their own."""
    rng = _rng(offset)
    a, b = correct_a.astype(np.int8), correct_b.astype(np.int8)
    images = a.shape[1]
    means = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 100):
        count = min(100, RESAMPLES - start)
        picked_a = rng.integers(0, len(a), size=(count, len(a)))
        picked_b = picked_a if paired else rng.integers(0, len(b), size=(count, len(b)))
        picked_images = rng.integers(0, images, size=(count, 1, images))
        mean_a = np.take_along_axis(a[picked_a], picked_images, axis=2).mean(axis=(1, 2))
        mean_b = np.take_along_axis(b[picked_b], picked_images, axis=2).mean(axis=(1, 2))
        means[start : start + count] = mean_a - mean_b
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


# --- verdicts that count training noise ---------------------------------------------------

POWER = 0.8  # the power at which `detectable` is quoted


def prob_outperform(a: Sequence[float], b: Sequence[float], offset: int = 0) -> tuple[float, float, float]:
    """P(A > B): the chance that a run of A scores above a run of B, over all pairs of seeds (ties
    count half; the Mann-Whitney estimate), with a 95% percentile bootstrap interval that resamples
    each side's seeds (Bouthillier et al. 2021). 0.5: exchangeable; 1: A always ahead."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # over the last axis of each
        gaps = x[..., :, None] - y[..., None, :]
        return (gaps > 0).mean(axis=(-2, -1)) + 0.5 * (gaps == 0).mean(axis=(-2, -1))

    rng = _rng(offset)
    resampled = estimate(
        a[rng.integers(0, len(a), size=(RESAMPLES, len(a)))],
        b[rng.integers(0, len(b), size=(RESAMPLES, len(b)))],
    )
    low, high = np.quantile(resampled, [ALPHA / 2, 1 - ALPHA / 2])
    return float(estimate(a, b)), float(low), float(high)


def detectable_difference(
    n_a: int, n_b: int, spread: float, paired: bool, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest true difference that a two-sided test at `alpha` over these seeds finds with
    `power` (80%), given the seed spread (statsmodels): `spread` is the standard deviation of the
    per-seed differences (paired) or the pooled standard deviation of the scores (otherwise; one
    run on a side is the t prediction-interval test, n_a = 1). None where it cannot be computed."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if not spread > 0 or (paired and n_a < 2) or (not paired and n_a + n_b < 3):
        return None
    if paired:
        effect = TTestPower().solve_power(nobs=n_a, alpha=alpha, power=power, alternative="two-sided")
    else:
        effect = TTestIndPower().solve_power(
            nobs1=n_a, ratio=n_b / n_a, alpha=alpha, power=power, alternative="two-sided"
        )
    return float(np.squeeze(effect)) * spread


def _t_p(statistic: float, df: float) -> float:
    from scipy.stats import t

    return float(2 * t.sf(abs(statistic), df))


@dataclass(frozen=True)
class Judgement:
    """One verdict on `after` against `before` (a change, or model A against model B).

    `p` is the seed-level test's (None where there is none); `low`/`high` the 95% interval of
    the accuracy difference; `p_better`, P(after > before) over seed pairs with its interval;
    `detectable`, the smallest difference these seeds find with 80% power; `mcnemar_p`, the
    exact McNemar test between one run of each side: the test set's noise only, never a verdict.
    """

    test: str
    seeds: tuple[int, int]  # runs after, runs before
    difference: float
    p: float | None
    low: float | None = None
    high: float | None = None
    p_better: tuple[float, float, float] | None = None
    detectable: float | None = None
    spread: float | None = None  # seed standard deviation the verdict was judged against
    mcnemar_p: float | None = None

    def verdict(self, p: float | None = None) -> str:
        """'better, p = 0.003', 'worse, ...', 'within noise (p = 0.41; 3 seeds detect changes
        above ±2.3 pts)', or, with no seed-level test, why there is no verdict. `p` overrides
        the test's own (a Holm-adjusted one)."""
        p = self.p if p is None else p
        if p is None:
            spread = f"; retraining moves it by ±{100 * self.spread:.1f} pts" if self.spread else ""
            return f"no verdict: one seed per side cannot tell a change from retraining noise{spread}"
        shown = f"p = {format_p(p)}" if p >= 0.001 else f"p {format_p(p)}"
        if p < ALPHA and self.difference != 0:
            return f"{'better' if self.difference > 0 else 'worse'}, {shown}"
        if self.detectable is None:
            return f"within noise ({shown})"
        n_after, n_before = self.seeds
        if n_after == n_before:
            runs = f"{n_after} seeds detect"
        elif 1 in self.seeds:
            runs = f"one run against {max(self.seeds)} seeds detects"
        else:
            runs = f"{n_after} against {n_before} seeds detect"
        return f"within noise ({shown}; {runs} changes above ±{100 * self.detectable:.1f} pts)"


def judge(
    after: dict[int, np.ndarray],
    before: dict[int, np.ndarray],
    spread_hint: float | None = None,
    offset: int = 0,
    details: bool = True,
    power: bool = True,
) -> Judgement:
    """Judge `after` against `before`, each {seed: which test images that run got right}.

    - several seeds on both sides: a paired t-test over seeds where both have the same seeds,
      Welch's otherwise; a two-level bootstrap interval; P(after > before); the detectable
      difference at 80% power.
    - one run on one side, several on the other: whether the single run falls outside the
      others' seed distribution (the t prediction interval for one new run: a two-sample t-test
      with one run on one side, N - 1 degrees of freedom).
    - one run on each side: no seed-level test. McNemar's p is kept, labelled as the test set's
      noise; `spread_hint` (the model's seed spread from a recorded run) is quoted instead.

    `details=False` skips the bootstrap interval and P(after > before), `power=False` the
    detectable difference (the verdict's words only; its call uses none of them).
    """
    from scipy.stats import ttest_ind, ttest_rel

    seeds_after, seeds_before = sorted(after), sorted(before)
    a = np.stack([after[s] for s in seeds_after])
    b = np.stack([before[s] for s in seeds_before])
    acc_a, acc_b = a.mean(axis=1), b.mean(axis=1)
    difference = float(acc_a.mean() - acc_b.mean())
    n_a, n_b = len(acc_a), len(acc_b)
    mcnemar = None
    if n_a == 1 or n_b == 1:
        shared = sorted(set(seeds_after) & set(seeds_before))
        pick_a, pick_b = (shared[0], shared[0]) if shared else (seeds_after[0], seeds_before[0])
        mcnemar = mcnemar_p(after[pick_a], before[pick_b])
    if n_a == 1 and n_b == 1:
        return Judgement("one seed each", (1, 1), difference, None, spread=spread_hint, mcnemar_p=mcnemar)
    if n_a == 1 or n_b == 1:
        single, many = (acc_a[0], acc_b) if n_a == 1 else (acc_b[0], acc_a)
        sd = float(many.std(ddof=1))
        scale = sd * np.sqrt(1 + 1 / len(many))
        p = (
            1.0
            if single == many.mean()
            else (0.0 if scale == 0 else _t_p((single - many.mean()) / scale, len(many) - 1))
        )
        half = _t_half_width(len(many) - 1) * scale
        return Judgement(
            f"one run against {len(many)} seeds (t prediction interval)",
            (n_a, n_b),
            difference,
            p,
            difference - half,
            difference + half,
            detectable=detectable_difference(1, len(many), sd, paired=False) if power else None,
            spread=sd,
            mcnemar_p=mcnemar,
        )
    paired = seeds_after == seeds_before
    if paired:
        gaps = acc_a - acc_b
        same_gap = np.allclose(gaps, gaps[0], rtol=0, atol=1e-12)  # beyond float rounding
        spread = 0.0 if same_gap else float(gaps.std(ddof=1))
        if not gaps.any():
            p = 1.0
        elif spread == 0:  # the same gap at every seed: t is infinite
            p = 0.0
        else:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # scipy's note on nearly equal gaps
                p = float(ttest_rel(acc_a, acc_b).pvalue)
        test = f"paired t over {n_a} seeds"
    else:
        spread = float(
            np.sqrt(((n_a - 1) * acc_a.var(ddof=1) + (n_b - 1) * acc_b.var(ddof=1)) / (n_a + n_b - 2))
        )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            welch = float(ttest_ind(acc_a, acc_b, equal_var=False).pvalue)
        p = 1.0 if acc_a.mean() == acc_b.mean() else welch
        p = 0.0 if p != p else p  # no spread on either side and different means
        test = f"Welch t over seeds ({n_a} against {n_b})"
    low, high = two_level_interval(a, b, paired=paired, offset=offset) if details else (None, None)
    return Judgement(
        test,
        (n_a, n_b),
        difference,
        p,
        low,
        high,
        p_better=prob_outperform(acc_a, acc_b, offset=offset) if details else None,
        detectable=detectable_difference(n_a, n_b, spread, paired=paired) if power else None,
        spread=spread,
    )


def _t_half_width(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(1 - ALPHA / 2, df))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels multipletests), in the given order."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def format_p(p: float) -> str:
    """A p-value as printed in the reports: three decimals, or "< 0.001"."""
    return f"{p:.3f}" if p >= 0.001 else "< 0.001"


def compare_pairs(
    correct: dict[str, dict[int, np.ndarray]], order: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Every pair of models, judged as `judge` judges a change (the same seeds on both sides:
    paired t over seeds; one seed: no verdict, McNemar as the test set's noise), with Holm's
    correction over the pairs that have a seed-level test. `correct[model]` is {seed: which test
    images that run got right}."""
    names = list(order or correct)
    judged = [
        (a, b, judge(correct[a], correct[b], offset=index))
        for index, (a, b) in enumerate(combinations(names, 2))
    ]
    tested = [j.p for _, _, j in judged if j.p is not None]
    adjusted = iter(holm(tested))
    rows = []
    for a, b, j in judged:
        p_holm = next(adjusted) if j.p is not None else None
        rows.append(
            {
                "a": a,
                "b": b,
                "test": j.test,
                "difference": j.difference,
                "low": j.low,
                "high": j.high,
                "p": j.p,
                "p_holm": p_holm,
                "significant": p_holm is not None and p_holm < ALPHA,
                "p_a_better": None if j.p_better is None else list(j.p_better),
                "detectable": j.detectable,
                "mcnemar_p": j.mcnemar_p,
                "verdict": j.verdict(p_holm),
            }
        )
    return rows


def summary(
    labels: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]],
    scores: dict[str, Any],
    classes: int,
) -> dict[str, Any]:
    """What `reports/statistics.json` holds: each model's 95% intervals and every pair of models.

    `labels`: per model and seed, the run's (true, predicted) test labels; `scores`: per model,
    a table of its four scores indexed by seed.
    One seed: Wilson (accuracy) and bootstrap (macro scores) intervals over the test images;
    several: t intervals of the mean over seeds. Pairs: `compare_pairs`, in the given order.
    """
    models: dict[str, Any] = {}
    for model_id, runs in labels.items():
        mine = scores[model_id]
        if len(runs) == 1:
            intervals = score_intervals(*next(iter(runs.values())), classes)
            method = "Wilson (accuracy), paired bootstrap over test images (macro scores)"
        else:
            intervals = {score: seed_interval(mine[score].tolist()) for score in mine.columns}
            method = "t interval of the mean over seeds"
        models[model_id] = {
            score: {
                "mean": round(float(mine[score].mean()), 6),
                "low": round(intervals[score][0], 6),
                "high": round(intervals[score][1], 6),
            }
            | ({"sd": round(float(mine[score].std(ddof=1)), 6)} if len(runs) > 1 else {})
            for score in mine.columns
        } | {"seeds": len(runs), "interval": method}
    correct = {
        m: {seed: truth == guess for seed, (truth, guess) in runs.items()} for m, runs in labels.items()
    }
    pairs = compare_pairs(correct, list(correct))
    for pair in pairs:
        for key, value in pair.items():
            if isinstance(value, float):
                pair[key] = float(f"{value:.6g}") if key.startswith(("p", "mcnemar")) else round(value, 6)
            elif isinstance(value, list):
                pair[key] = [round(v, 6) for v in value]
    images = len(next(iter(next(iter(correct.values())).values()))) if correct else 0
    return {"confidence": CONFIDENCE, "test_images": images, "models": models, "pairs": pairs}
