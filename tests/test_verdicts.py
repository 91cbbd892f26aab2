"""Verdicts with known answers (src/evidence/verdicts.py): seed distributions simulated with fixed seeds.

Each run's accuracy is drawn from a normal distribution with a 1.5-point seed spread and
rounded to whole test images (of 10,000), as real accuracies are; the verdicts then have to
mean what they print: intervals that cover the true difference 95% of the time, verdicts that
never disagree with their interval, detectable sizes found four times in five, and at most one
report in twenty with a false call.
"""

from __future__ import annotations

import numpy as np
import pytest

from src.evidence import stats, verdicts

SPREAD = 0.015
DRAWS = 1000


def _runs(rng: np.random.Generator, mean: float, n: int, first_seed: int = 0) -> dict[int, float]:
    return {first_seed + k: round(float(value), 4) for k, value in enumerate(rng.normal(mean, SPREAD, n))}


def _called(judged: verdicts.Judgement) -> bool:
    return judged.verdict().startswith(("better", "worse"))


def _consistent(judged: verdicts.Judgement) -> bool:
    low, high = judged.interval
    return _called(judged) == (low > 0 or high < 0)


def coverage(n: int, paired: bool) -> float:
    """How often the interval covers a true difference of one point; asserts agreement on the way."""
    rng = np.random.default_rng(n * 2 + paired)
    truth, covered = 0.01, 0
    for _ in range(DRAWS):
        after = _runs(rng, 0.60 + truth, n)
        before = _runs(rng, 0.60, n, first_seed=0 if paired else 100)
        judged = verdicts.judge_scores(after, before)
        assert judged.test.startswith("paired" if paired else "Welch")
        low, high = judged.interval
        covered += low <= truth <= high
        assert _consistent(judged), judged
    return covered / DRAWS


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("paired", [True, False])
def test_the_interval_covers_the_true_difference_95_percent_of_the_time_and_agrees_with_the_verdict(
    n: int, paired: bool
) -> None:
    assert 0.93 <= coverage(n, paired) <= 0.97


def test_one_image_more_at_every_seed_is_no_verdict() -> None:
    before = {42: 0.6000, 1: 0.6100, 2: 0.5900}
    after = {seed: accuracy + 0.0001 for seed, accuracy in before.items()}
    judged = verdicts.judge_scores(after, before)
    assert judged.p is None and not _called(judged) and judged.interval is None
    assert judged.verdict() == (
        "no verdict: the gap is +0.01 pts at every seed, so these seeds show no spread to judge it against; "
        "add seeds"
    )
    assert verdicts.judge_scores({1: 0.61, 2: 0.61}, {3: 0.60, 4: 0.60}).verdict().startswith("no verdict")
    assert verdicts.judge_scores({9: 0.7}, {1: 0.6, 2: 0.6, 3: 0.6}).verdict().startswith("no verdict")
    [judged] = verdicts.family([judged])  # left out of the correction: it has no test
    assert judged.p is None


def _found(kind: str, n: int, alpha: float, rng: np.random.Generator) -> float:
    """How often the test finds a true difference of the size it quotes as detectable."""
    size = stats.detectable(kind, 1 if kind == "prediction" else n, n, alpha=alpha)
    found = 0
    for _ in range(DRAWS):
        if kind == "paired":  # the spread quoted is that of the per-seed gaps
            gaps = rng.normal(size * SPREAD, SPREAD, n)
            judged = verdicts.judge_scores(dict(enumerate(0.6 + gaps)), dict.fromkeys(range(n), 0.6))
        elif kind == "welch":
            judged = verdicts.judge_scores(_runs(rng, 0.6 + size * SPREAD, n), _runs(rng, 0.6, n, 100))
        else:
            judged = verdicts.judge_scores(_runs(rng, 0.6 + size * SPREAD, 1, 99), _runs(rng, 0.6, n))
        assert judged.t.kind == kind
        found += judged.t.p < alpha and judged.difference > 0
    return found / DRAWS


POWER_CASES = [
    ("paired", 3, 0.05),
    ("paired", 5, 0.05),
    ("welch", 3, 0.05),
    ("welch", 2, 0.05),
    ("prediction", 3, 0.05),
    ("paired", 5, 0.005),  # 0.005: Holm's strictest step over 10 pairs
    ("welch", 5, 0.005),
]


@pytest.mark.parametrize(
    ("kind", "n", "alpha"),
    POWER_CASES,
)
def test_the_detectable_size_is_found_four_times_in_five(kind: str, n: int, alpha: float) -> None:
    assert 0.75 <= _found(kind, n, alpha, np.random.default_rng(n)) <= 0.85


def false_alarm_reports() -> tuple[float, float]:
    """Share of A/A reports over five unchanged models (3 seeds a side) with any call: without
    and with the report's correction."""
    rng = np.random.default_rng(5)
    corrected = uncorrected = 0
    for _ in range(DRAWS):
        judged = [verdicts.judge_scores(_runs(rng, 0.6, 3), _runs(rng, 0.6, 3)) for _model in range(5)]
        uncorrected += any(_called(j) for j in judged)
        family = verdicts.family(judged)
        corrected += any(_called(j) for j in family)
        assert all(_consistent(j) for j in family)
    return uncorrected / DRAWS, corrected / DRAWS


def test_a_report_of_five_unchanged_models_calls_at_most_one_in_twenty() -> None:
    uncorrected, corrected = false_alarm_reports()
    assert uncorrected > 0.15  # five tests at 5% each: about 23% of reports
    assert corrected <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / DRAWS)  # 5%, within two binomial sds


def test_overlapping_seed_sets_keep_the_pairing_of_the_shared_seeds() -> None:
    before = {42: 0.60, 1: 0.62, 2: 0.59}
    after = {42: 0.63, 1: 0.645, 2: 0.62, 3: 0.66, 4: 0.58}
    judged = verdicts.judge_scores(after, before)
    assert judged.test == "paired t over the 3 shared seeds (2 runs without a partner left out)"
    assert judged.difference == pytest.approx(np.mean([0.03, 0.025, 0.03]))
    assert verdicts.judge_scores({7: 0.6, 8: 0.62}, {42: 0.6, 1: 0.59}).test.startswith("Welch")


def test_mcnemar_compares_runs_of_the_same_seed_only() -> None:
    rng = np.random.default_rng(0)
    runs = {seed: rng.random(10_000) < 0.6 for seed in (42, 1, 2, 5)}
    recorded = {seed: runs[seed] for seed in (42, 1, 2)}
    judged = verdicts.judge({5: runs[5]}, recorded)
    assert judged.mcnemar is None  # seed 5 has no partner among 42, 1, 2
    judged = verdicts.judge({1: runs[5]}, recorded)
    assert judged.mcnemar[1] == "seed 1 against seed 1"
    assert judged.mcnemar[0] == stats.mcnemar_p(runs[5], runs[1])


def test_pairs_of_models_are_corrected_together_and_each_interval_agrees_with_its_verdict() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(10_000)
    correct = {  # three models, three seeds each: a ahead of b by about 6 points, c near b
        name: {seed: base < level + 0.01 * offset for seed, offset in zip((42, 1, 2), shifts, strict=True)}
        for name, level, shifts in (
            ("a", 0.66, (0, 1, 0.5)),
            ("b", 0.60, (0, 0.5, 1)),
            ("c", 0.605, (1, 0, 0.2)),
        )
    }
    pairs = verdicts.compare_pairs(correct)
    assert [(pair["a"], pair["b"]) for pair in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    raw = sorted(pair["p"] for pair in pairs)
    assert min(pair["p_holm"] for pair in pairs) == pytest.approx(3 * raw[0])
    for pair in pairs:
        assert (pair["low"] > 0 or pair["high"] < 0) == pair["significant"]
        assert pair["confidence"] >= 0.95 and pair["seed_pairs"] == 9
    assert pairs[0]["verdict"].startswith("better") and pairs[2]["verdict"].startswith("within noise")


if __name__ == "__main__":  # the figures behind these tests: python -m tests.test_verdicts
    for n in (3, 5):
        for paired in (True, False):
            test = "paired" if paired else "Welch"
            print(f"coverage of the 95% interval, {test}, n = {n}: {coverage(n, paired):.1%}")
    print(
        "A/A reports of five models with a false call: {:.1%} uncorrected, {:.1%} Holm".format(
            *false_alarm_reports()
        )
    )
    for kind, n, alpha in POWER_CASES:
        print(f"power at the quoted detectable size: {kind}, n = {n}, alpha = {alpha}: "
              f"{_found(kind, n, alpha, np.random.default_rng(n)):.1%}")  # fmt: skip
