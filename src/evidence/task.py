"""Differences about the task, not these test images: both sources of noise counted.

A study's accuracy gap is a mean over a few seeds and one sample of 10,000 test images; the
question is the gap on images of this kind. The per-image correctness of a model's runs is a
two-way crossed layout (seeds × images); the variance of its grand mean is
sigma_img²/N + sigma_seed²/S + sigma_res²/(N S), estimated without bias from the layout's
mean squares (docs/statistics.md derives it). `task_t` turns that into a t-test with
Satterthwaite's degrees of freedom; stats.detectable_ncp gives its exact detectable size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.evidence.stats import TTest


@dataclass(frozen=True)
class Layout:
    """Mean squares of one seeds × images layout of 0/1 (or difference) values."""

    seeds: int
    images: int
    seed_means: np.ndarray  # (S,): each run's accuracy (or paired gap)
    image_means: np.ndarray  # (N,): each image's mean over the runs
    residual_ms: float  # seed × image interaction mean square; 0 with one seed


def layout(values: np.ndarray) -> Layout:
    """The mean squares of an (S, N) array."""
    x = np.asarray(values, dtype=float)
    seeds, images = x.shape
    seed_means, image_means, grand = x.mean(axis=1), x.mean(axis=0), float(x.mean())
    residual_ms = 0.0
    if seeds > 1:
        total = float(((x - grand) ** 2).sum())
        rows = images * float(((seed_means - grand) ** 2).sum())
        columns = seeds * float(((image_means - grand) ** 2).sum())
        residual_ms = max(0.0, total - rows - columns) / ((seeds - 1) * (images - 1))
    return Layout(seeds, images, seed_means, image_means, residual_ms)


def _seed_terms(side: Layout) -> list[tuple[float, float]]:
    """(variance term, degrees of freedom) of one side's seed noise in the variance of its mean:
    var(accuracies)/S, less residual/(N S), the share of it the image term already holds.
    Truncated at zero, as variance components are: where the runs differ no more than
    their per-image noise implies, the seeds add nothing beyond the image term."""
    s, n = side.seeds, side.images
    seed_term, correction = float(side.seed_means.var(ddof=1)) / s, side.residual_ms / (n * s)
    if seed_term <= correction:
        return []
    return [(seed_term, s - 1), (-correction, (s - 1) * (n - 1))]


def _satterthwaite(terms: list[tuple[float, float]]) -> tuple[float, float]:
    """The variance and its degrees of freedom; (0, nan) where the runs show no noise at all
    (every run right on the same images), which `task_t` answers with no test."""
    variance = sum(term for term, _ in terms)
    weight = sum(term**2 / df for term, df in terms if df > 0 and term != 0)
    if not variance > 0 or weight == 0:
        return 0.0, float("nan")
    return variance, float(variance**2 / weight)


def task_t(after: np.ndarray, before: np.ndarray, paired: bool = False) -> TTest | None:
    """The t-test of after − before on the task: `after` (S_a, N) and `before` (S_b, N) say
    which of the same N test images each run got right. `paired`: row s of both sides share
    everything random (same architecture, same seed), so the layout of their differences is
    judged; else the sides' seeds are independent. None without seed noise to measure."""
    if after.shape[1] != before.shape[1]:
        raise ValueError(f"the two sides were tested on {after.shape[1]} and {before.shape[1]} images")
    if paired:
        gaps = layout(after.astype(float) - before.astype(float))
        if gaps.seeds < 2:
            return None
        image_term: tuple[float, float] = (float(gaps.image_means.var(ddof=1)) / gaps.images, gaps.images - 1)
        variance, df = _satterthwaite([image_term, *_seed_terms(gaps)])
        difference = float(gaps.seed_means.mean())
    else:
        a, b = layout(after), layout(before)
        if a.seeds == 1 and b.seeds == 1:
            return None
        per_image = a.image_means - b.image_means
        terms: list[tuple[float, float]] = [(float(per_image.var(ddof=1)) / a.images, a.images - 1)]
        for side, other in ((a, b), (b, a)):
            if side.seeds > 1:
                terms += _seed_terms(side)
            else:  # one run: its seed noise taken to be the other side's, per run
                per_run = float(other.seed_means.var(ddof=1)) - other.residual_ms / other.images
                terms += [(per_run, other.seeds - 1)] if per_run > 0 else []
        variance, df = _satterthwaite(terms)
        difference = float(a.seed_means.mean() - b.seed_means.mean())
    if not variance > 1e-18:
        return None
    return TTest("task", difference, float(np.sqrt(variance)), df)


def image_noise(after: np.ndarray, before: np.ndarray) -> float:
    """The test set's own noise floor: the standard error of the gap that the sampling of the
    test images alone leaves, however many seeds (sqrt(var over images of the gap)/N)."""
    per_image = np.asarray(after, dtype=float).mean(axis=0) - np.asarray(before, dtype=float).mean(axis=0)
    return float(np.sqrt(per_image.var(ddof=1) / len(per_image)))
