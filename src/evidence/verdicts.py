"""Verdicts about the task: is `after` better than `before` on images like the test set?

`judge` decides every verdict the reports print (compare's model against model, make report's
change against the recorded run) from which test images each run got right, counting both the
seeds' noise and the test images' (src/evidence/task.py); the seed-only test on these 10,000
images is kept beside it. `family` Holm-corrects the verdicts of one report. Which test, when,
and what each number means: docs/statistics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from src.evidence.stats import (
    ALPHA,
    CONFIDENCE,
    TTest,
    detectable,
    detectable_ncp,
    format_p,
    holm,
    holm_levels,
    mcnemar_p,
    paired_t,
    prediction_t,
    prob_outperform,
    score_intervals,
    seed_interval,
    welch_t,
)
from src.evidence.task import image_noise, task_t


@dataclass(frozen=True)
class Judgement:
    """One verdict on `after` against `before` (a change, or model A against model B)."""

    test: str  # what was run, in words
    seeds: tuple[int, int]  # runs after, runs before
    difference: float  # mean accuracy after - before
    t: TTest | None = None  # None: no seed-level test (one seed each, or no spread)
    p: float | None = None  # the test's p, Holm-adjusted where `family` adjusted it
    alpha: float = ALPHA  # the level the interval is at: 1 - alpha confidence
    detect_alpha: float = ALPHA  # the level the detectable size is quoted at
    spread: float | None = None  # the seed spread the test judged against (sd of gaps or of runs)
    p_better: float | None = None  # P(a run after > a run before)
    seed_pairs: int = 0  # how many (after, before) pairs of runs P(better) rests on
    mcnemar: tuple[float, str] | None = None  # (p, "seed 42 against seed 42") where runs correspond
    no_spread: bool = False
    adjusted: bool = False  # p is Holm-adjusted (family)
    images_p: float | None = None  # the seed-only test's p: on these test images alone
    noise_floor: float | None = None  # standard error the test images' sampling alone leaves

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.t is None else self.t.interval(self.alpha)

    @property
    def detectable(self) -> float | None:
        """The smallest true difference this test finds 4 times in 5 at its level (exact)."""
        if self.t is None:
            return None
        if self.t.kind == "task":
            return self.t.se * detectable_ncp(self.t.df, self.detect_alpha)
        return (
            None
            if self.spread is None
            else detectable(self.t.kind, *self.seeds, alpha=self.detect_alpha) * self.spread
        )

    @property
    def p_label(self) -> str:
        """'p = 0.041', 'p < 0.001', or 'Holm-adjusted p = 1.000'."""
        if self.p is None:
            return ""
        shown = f"p = {format_p(self.p)}" if self.p >= 0.001 else f"p {format_p(self.p)}"
        return f"Holm-adjusted {shown}" if self.adjusted else shown

    def verdict(self) -> str:
        """'better, p = 0.003', 'worse, ...', 'within noise (p = 0.41; 3 seeds detect changes
        above ±2.3 pts)', or why there is no verdict."""
        if self.no_spread:
            return (
                f"no verdict: the gap is {100 * self.difference:+.2f} pts at every seed, so these seeds "
                "show no spread to judge it against; add seeds"
            )
        if self.p is None:
            spread = f"; retraining moves it by ±{100 * self.spread:.1f} pts" if self.spread else ""
            return f"no verdict: one seed per side cannot tell a change from retraining noise{spread}"
        shown = self.p_label
        if self.p < ALPHA:
            return f"{'better' if self.difference > 0 else 'worse'}, {shown}"
        n_after, n_before = self.seeds
        if n_after == n_before:
            runs = f"{n_after} seeds detect"
        elif 1 in self.seeds:
            runs = f"one run against {max(self.seeds)} seeds detects"
        else:
            runs = f"{n_after} against {n_before} seeds detect"
        size = self.detectable
        if size is None or size >= 1:  # beyond any possible change of accuracy: say so, not "±514 pts"
            return f"within noise ({shown}; {runs} no change of accuracy at all at this level: add seeds)"
        return f"within noise ({shown}; {runs} changes above ±{100 * size:.1f} pts)"


def _accuracies(runs: dict[int, np.ndarray]) -> dict[int, float]:
    return {seed: float(np.mean(correct)) for seed, correct in sorted(runs.items())}


def _mcnemar(after: dict[int, np.ndarray], before: dict[int, np.ndarray]) -> tuple[float, str] | None:
    """McNemar's p between the one run of a side and the other side's run of the same seed."""
    single, other = (after, before) if len(after) == 1 else (before, after)
    (seed,) = single
    if seed not in other:
        return None
    return mcnemar_p(after[seed], before[seed]), f"seed {seed} against seed {seed}"


def judge(
    after: dict[int, np.ndarray],
    before: dict[int, np.ndarray],
    spread_hint: float | None = None,
    paired: bool = False,
) -> Judgement:
    """Judge `after` against `before`, each {seed: which test images that run got right}, on the
    task: seeds and test images both counted (`task_t`). `paired`: the two sides are the same
    model, so equal seed numbers share initial weights, data order and draws (make report);
    across architectures they share nothing (compare). `spread_hint` (the model's seed spread
    in a recorded run) is quoted where one seed each allows no test."""
    sizes = {len(correct) for correct in [*after.values(), *before.values()]}
    if len(sizes) != 1:
        raise ValueError(f"the runs were scored on different numbers of test images: {sorted(sizes)}")
    fixed = judge_scores(_accuracies(after), _accuracies(before), spread_hint)
    if 1 in fixed.seeds:
        fixed = replace(fixed, mcnemar=_mcnemar(after, before))
    a, b = np.array([after[s] for s in sorted(after)]), np.array([before[s] for s in sorted(before)])
    shared = sorted(set(after) & set(before))
    if paired and len(shared) >= 2:
        a, b = np.array([after[s] for s in shared]), np.array([before[s] for s in shared])
    task = task_t(a, b, paired=paired and len(shared) >= 2)
    floor = image_noise(a, b)
    if task is None:
        return replace(fixed, t=None, p=None, noise_floor=floor, images_p=fixed.p)
    what = f"paired over {len(shared)} seeds" if paired and len(shared) >= 2 else "seeds independent"
    test = f"two-level t on seeds and test images ({what}; {task.df:.1f} df)"
    return replace(fixed, test=test, difference=task.difference, t=task, p=task.p, no_spread=False,
                   images_p=fixed.p, noise_floor=floor)  # fmt: skip


def judge_scores(
    after: dict[int, float], before: dict[int, float], spread_hint: float | None = None
) -> Judgement:
    """`judge` on each run's accuracy, {seed: accuracy}: the verdict itself."""
    a, b = np.array(list(after.values())), np.array(list(before.values()))
    difference = float(a.mean() - b.mean())
    seeds = (len(a), len(b))
    if seeds == (1, 1):
        return Judgement("one seed each", seeds, difference, spread=spread_hint)
    if 1 in seeds:
        return _one_against_many(a, b, difference)
    shared = sorted(set(after) & set(before))
    if len(shared) >= 2:
        return _paired(after, before, shared)
    return _welch(a, b, difference)


def _one_against_many(a: np.ndarray, b: np.ndarray, difference: float) -> Judgement:
    single_first = len(a) == 1
    single, many = (a[0], b) if single_first else (b[0], a)
    test = f"one run against {len(many)} seeds (t prediction interval)"
    t = prediction_t(single, many, single_first)
    return _judged(test, (len(a), len(b)), difference, t, float(many.std(ddof=1)), a, b)


def _paired(after: dict[int, float], before: dict[int, float], shared: list[int]) -> Judgement:
    a, b = np.array([after[s] for s in shared]), np.array([before[s] for s in shared])
    left_out = len(after) + len(before) - 2 * len(shared)
    test = (
        f"paired t over {len(shared)} seeds"
        if not left_out
        else (f"paired t over the {len(shared)} shared seeds ({left_out} runs without a partner left out)")
    )
    gaps = a - b
    return _judged(
        test, (len(shared), len(shared)), float(gaps.mean()), paired_t(a, b), float(gaps.std(ddof=1)), a, b
    )


def _welch(a: np.ndarray, b: np.ndarray, difference: float) -> Judgement:
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    test = f"Welch t over seeds ({len(a)} against {len(b)})"
    return _judged(test, (len(a), len(b)), difference, welch_t(a, b), float(pooled), a, b)


def _judged(
    test: str,
    seeds: tuple[int, int],
    difference: float,
    t: TTest | None,
    spread: float,
    a: np.ndarray,
    b: np.ndarray,
) -> Judgement:
    p_better, pairs = prob_outperform(a, b), len(a) * len(b)
    if t is None:
        return Judgement(
            test, seeds, difference, spread=spread, no_spread=True, p_better=p_better, seed_pairs=pairs
        )
    return Judgement(test, seeds, difference, t, t.p, spread=spread, p_better=p_better, seed_pairs=pairs)


def _tested(judged: Judgement) -> TTest:
    assert judged.t is not None
    return judged.t


def family(judgements: Sequence[Judgement]) -> list[Judgement]:
    """The verdicts of one report, Holm-corrected together: at most a 5% chance that any of
    them calls a change where there is none. Verdicts without a test are left as they are."""
    tested = [index for index, judged in enumerate(judgements) if judged.t is not None]
    raw = [_tested(judgements[index]).p for index in tested]
    adjusted = dict(zip(tested, holm(raw), strict=True))
    levels = dict(zip(tested, holm_levels(raw), strict=True))
    result = list(judgements)
    for index in tested:
        judged, p = judgements[index], adjusted[index]
        alpha = ALPHA * _tested(judged).p / p if p > 0 else ALPHA / len(tested)
        result[index] = replace(
            judged, p=p, alpha=min(ALPHA, alpha), detect_alpha=levels[index], adjusted=len(tested) > 1
        )
    return result


def family_line(judgements: Sequence[Judgement]) -> str:
    """One line that says what error rate a report's verdicts hold to."""
    tested = sum(judged.t is not None for judged in judgements)
    if tested < 2:
        return "One verdict with a seed-level test: its chance of a false alarm is 5%."
    return (
        f"The {tested} seed-level verdicts are Holm-corrected together: the chance that any of them "
        "calls a change where there is none is at most 5%; each interval is at the level its corrected "
        "test was run at."
    )


def compare_pairs(
    correct: dict[str, dict[int, np.ndarray]], order: Sequence[str] | None = None
) -> list[dict]:
    """Every pair of models judged as `judge` judges a change, Holm-corrected over the pairs.
    `correct[model]` is {seed: which test images that run got right}."""
    names = list(order or correct)
    pairs = [(a, b) for index, a in enumerate(names) for b in names[index + 1 :]]
    raw = [judge(correct[a], correct[b]) for a, b in pairs]
    rows = []
    for (a, b), unadjusted, judged in zip(pairs, raw, family(raw), strict=True):
        interval = judged.interval
        rows.append(
            {
                "a": a,
                "b": b,
                "test": judged.test,
                "difference": judged.difference,
                "low": None if interval is None else interval[0],
                "high": None if interval is None else interval[1],
                "confidence": None if interval is None else 1 - judged.alpha,
                "p": unadjusted.p,
                "p_holm": judged.p,
                "significant": judged.p is not None and judged.p < ALPHA,
                "p_a_better": judged.p_better,
                "seed_pairs": judged.seed_pairs,
                "detectable": judged.detectable,
                "p_these_images": judged.images_p,
                "test_set_se": judged.noise_floor,
                "mcnemar_p": None if judged.mcnemar is None else judged.mcnemar[0],
                "mcnemar_runs": None if judged.mcnemar is None else judged.mcnemar[1],
                "verdict": judged.verdict(),
            }
        )
    return rows


def _interval(interval: tuple[float, float] | None) -> tuple[float, float]:
    assert interval is not None  # several seeds: always an interval
    return interval


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
            intervals = {score: _interval(seed_interval(mine[score].tolist())) for score in mine.columns}
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
    images = len(next(iter(next(iter(correct.values())).values()))) if correct else 0
    return {"confidence": CONFIDENCE, "test_images": images, "models": models, "pairs": pairs}
