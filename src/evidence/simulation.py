"""Studies simulated from recorded predictions, where the truth is known: how often the
verdicts call a difference that is not there, and how often their intervals cover it.

Each simulated model has, per image of the task, a logit of being right: the image's
difficulty (drawn from the recorded runs' per-image accuracy) plus the model's own per-image
deviation; each run adds a seed shift and draws right or wrong. Models that share the
difficulty and the deviations' spread are equally good on the task, whatever their gap on
one sample of test images. Each study draws its test images afresh from that task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.evidence.stats import ALPHA, CONFIDENCE


@dataclass(frozen=True)
class Task:
    """A population of images (their difficulty logits) and the noise of models trained on it."""

    difficulty: np.ndarray  # logit of the share of recorded runs right on each image
    model_spread: float = 1.0  # sd of a model's own per-image logit deviation
    seed_shift: float = 0.03  # sd of a run's logit shift (a seed's luck)

    @classmethod
    def from_runs(cls, correct: np.ndarray, **noise: float) -> Task:
        """From recorded runs' correctness, (runs, images): each image's difficulty."""
        share = np.clip(np.asarray(correct, dtype=float).mean(axis=0), 0.02, 0.98)
        return cls(np.log(share / (1 - share)), **noise)


def recorded_correct(
    predictions_dir: Path, models: tuple[str, ...] = ("simple_cnn", "cnn_da_dropout")
) -> np.ndarray:
    """Which test images each recorded run of `models` got right: (runs, images)."""
    from src.ground import predictions

    runs = []
    for model in models:
        for path in sorted(predictions_dir.glob(f"{model}-*.csv")):
            truth, guess = predictions.parse(path.read_text(), str(path))
            runs.append(truth == guess)
    return np.array(runs)


def draw_study(task: Task, models: int, seeds: int, images: int, rng: np.random.Generator) -> np.ndarray:
    """Which of `images` freshly drawn test images each run got right: (models, seeds, images),
    every model equally good on the task."""
    base = task.difficulty[rng.integers(0, len(task.difficulty), images)]
    deviation = rng.normal(0.0, task.model_spread, (models, 1, images))
    shift = rng.normal(0.0, task.seed_shift, (models, seeds, 1))
    probability = 1.0 / (1.0 + np.exp(-(base + deviation + shift)))
    return rng.random((models, seeds, images)) < probability


@dataclass(frozen=True)
class Calibration:
    """What the verdicts did over many null studies."""

    seeds: int
    studies: int
    false_calls: float  # one comparison: share of studies with p < alpha
    coverage: float  # share of 95% intervals that hold the true difference, 0
    family_false_calls: float  # a 5-model report, Holm over its 10 pairs: share with any call
    seed_sd: float  # mean seed standard deviation of a model's accuracy, as a check of realism


def calibrate(task: Task, seeds: int, studies: int, images: int = 10_000, seed: int = 0) -> Calibration:
    """Run `studies` null studies of five equally good models through the verdicts: `judge` on
    each of the 10 pairs, `family` (Holm) over them, as compare does."""
    from src.evidence.verdicts import family, judge

    rng = np.random.default_rng(seed)
    calls = covered = family_calls = 0
    sds = []
    for _ in range(studies):
        study = draw_study(task, 5, seeds, images, rng)
        runs = [{s: study[m, s] for s in range(seeds)} for m in range(5)]
        judged = [judge(runs[a], runs[b]) for a in range(5) for b in range(a + 1, 5)]
        first = judged[0]  # model 0 against model 1, as one comparison on its own
        calls += first.p is not None and first.p < ALPHA
        if first.t is not None:
            low, high = first.t.interval(1 - CONFIDENCE)
            covered += low <= 0.0 <= high
        family_calls += any(j.p is not None and j.p < ALPHA for j in family(judged))
        sds.append(float(study[0].mean(axis=1).std(ddof=1)))
    return Calibration(seeds, studies, calls / studies, covered / studies, family_calls / studies,
                       float(np.mean(sds)))  # fmt: skip
