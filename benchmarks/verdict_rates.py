"""The analysis of `python -m benchmarks verdicts`: the report's own verdict code applied to
random draws of the trained runs, tallied as false alarms (A/A) and catches (A/B) per procedure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np

SPLIT_SEED = 42  # the pipeline's `seed`: the split of the seed runs
TRAIN_SEED = 42  # the training seed of the split runs
REFERENCE_SEEDS = 3  # "one run against N seeds": N, the recorded run's seeds
POWER_DRAWS = 200  # A/A draws whose detectable difference is computed (median reported)


def _unpack(text: str, images: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:images].astype(bool)


def _called(judgement: Any) -> bool:
    from src.evidence.stats import ALPHA

    return judgement.p is not None and judgement.p < ALPHA and judgement.difference != 0


def _mcnemar_called(after: np.ndarray, before: np.ndarray) -> bool:
    """McNemar's verdict between two runs (what one run a side once got; the test set's noise only)."""
    from src.evidence.stats import ALPHA, mcnemar_p

    return mcnemar_p(after, before) < ALPHA and after.mean() != before.mean()


Draw = Callable[[], tuple[bool, Any]]  # one simulated comparison: (called, its judgement)


def _tally(name: str, a_a: Draw, a_b: Draw, draws: int, detectable: bool) -> dict[str, Any]:
    """How often `a_a` calls a verdict (false alarms) and `a_b` calls "better" (catches)."""
    alarms = catches = 0
    sizes = []
    for draw in range(draws):
        called, judgement = a_a()
        alarms += called
        if detectable and draw < POWER_DRAWS and judgement.detectable is not None:  # slow: a sample
            sizes.append(judgement.detectable)
        catches += a_b()[0]
    return {
        "procedure": name,
        "false_alarms": alarms / draws,
        "catches": catches / draws,
        "detectable_points": round(100 * float(np.median(sizes)), 2) if sizes else None,
    }


def _one_run_procedures(
    before: list[np.ndarray], after: list[np.ndarray], pick: Callable[[int], np.ndarray]
) -> list[tuple[str, Draw, Draw, bool]]:
    """One run after against one run before (McNemar), and against REFERENCE_SEEDS seeds."""
    from src.evidence.verdicts import judge

    def one_each_aa() -> tuple[bool, Any]:
        i, j = pick(2)
        return _mcnemar_called(before[i], before[j]), judge({0: before[i]}, {1: before[j]})

    def one_each_ab() -> tuple[bool, Any]:
        (i,) = pick(1)
        judgement = judge({0: after[i]}, {0: before[i]})
        return _mcnemar_called(after[i], before[i]) and judgement.difference > 0, judgement

    def against(source: list[np.ndarray]) -> Draw:
        def draw() -> tuple[bool, Any]:
            chosen = pick(REFERENCE_SEEDS + 1)
            judgement = judge({int(chosen[0]): source[chosen[0]]}, {int(s): before[s] for s in chosen[1:]})
            return _called(judgement) and (source is before or judgement.difference > 0), judgement

        return draw

    return [
        ("one run each, McNemar (test set only)", one_each_aa, one_each_ab, False),
        (
            f"one run against {REFERENCE_SEEDS} seeds (t prediction interval)",
            against(before),
            against(after),
            True,
        ),
    ]


def _seed_set_procedures(
    before: list[np.ndarray], after: list[np.ndarray], pick: Callable[[int], np.ndarray], n: int
) -> list[tuple[str, Draw, Draw, bool]]:
    """n seeds after against n before: disjoint seeds (Welch) and the same seeds (paired)."""
    from src.evidence.verdicts import judge

    def welch(source: list[np.ndarray]) -> Draw:
        def draw() -> tuple[bool, Any]:
            chosen = pick(2 * n)
            judgement = judge(
                {int(s): source[s] for s in chosen[:n]}, {int(s): before[s] for s in chosen[n:]}
            )
            return _called(judgement) and (source is before or judgement.difference > 0), judgement

        return draw

    def paired_aa() -> tuple[bool, Any]:
        chosen = pick(2 * n)  # nothing changed: two seed sets of the same params, paired by position
        judgement = judge(
            {k: before[s] for k, s in enumerate(chosen[:n])}, {k: before[s] for k, s in enumerate(chosen[n:])}
        )
        return _called(judgement), judgement

    def paired_ab() -> tuple[bool, Any]:
        chosen = pick(n)  # the same seeds before and after, as in a pull request
        judgement = judge({int(s): after[s] for s in chosen}, {int(s): before[s] for s in chosen})
        return _called(judgement) and judgement.difference > 0, judgement

    return [
        (f"{n} against {n} seeds, Welch t (disjoint seeds)", welch(before), welch(after), True),
        (f"{n} against {n} seeds, paired t (same seeds)", paired_aa, paired_ab, True),
    ]


def rates(
    before: list[np.ndarray], after: list[np.ndarray], draws: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Per procedure: how often a verdict is called in A/A draws (false alarms) and how often
    "better" in A/B draws (catches). `before[i]`/`after[i]`: run i before and after the change."""
    seeds = len(before)

    def pick(count: int) -> np.ndarray:
        return rng.choice(seeds, size=count, replace=False)

    procedures = _one_run_procedures(before, after, pick)
    for n in (2, 3, 5):
        if 2 * n <= seeds:
            procedures += _seed_set_procedures(before, after, pick, n)
    return [_tally(name, a_a, a_b, draws, detectable) for name, a_a, a_b, detectable in procedures]


def analyse(records: list[dict[str, Any]], draws: int) -> dict[str, Any]:
    """The false-alarm and catch rates per model and procedure, and the seed and split spreads."""
    results: dict[str, Any] = {}
    for model_id in dict.fromkeys(record["model"] for record in records):
        mine = [r for r in records if r["model"] == model_id]
        seed_runs = sorted((r for r in mine if r["split_seed"] == SPLIT_SEED), key=lambda r: r["seed"])
        split_runs = sorted((r for r in mine if r["seed"] == TRAIN_SEED), key=lambda r: r["split_seed"])
        if not seed_runs:
            continue
        last = max(seed_runs[0]["accuracy"], key=int)
        first = str(int(last) - 1)
        images = seed_runs[0]["test_images"]
        before = [_unpack(r["correct"][first], images) for r in seed_runs]
        after = [_unpack(r["correct"][last], images) for r in seed_runs]
        gains = [100 * (a.mean() - b.mean()) for a, b in zip(after, before, strict=True)]
        rng = np.random.default_rng(20261203)
        results[model_id] = {
            "seeds": len(seed_runs),
            "epochs": f"{first} -> {last}",
            "train_images": seed_runs[0]["train_images"],
            "accuracy_before": _mean_sd([100 * b.mean() for b in before]),
            "accuracy_after": _mean_sd([100 * a.mean() for a in after]),
            "change_points": _mean_sd(gains),
            "change_up_at_seeds": f"{sum(g > 0 for g in gains)}/{len(gains)}",
            "split_spread_points": _mean_sd([100 * r["accuracy"][first] for r in split_runs])
            if len(split_runs) > 1
            else None,
            "split_runs": len(split_runs),
            "procedures": rates(before, after, draws, rng) if len(seed_runs) >= 4 else [],
        }
    return results


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 2), "sd": round(float(np.std(values, ddof=1)), 2)}


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per procedure, false alarms and catches per model."""
    lines = []
    for model_id, result in results.items():
        before, after, change = (
            result[key] for key in ("accuracy_before", "accuracy_after", "change_points")
        )
        head = (
            f"{model_id}: {result['seeds']} seeds, epochs {result['epochs']}, "
            f"{result['train_images']:,} training images; "
            f"accuracy {_shown(before)} -> {_shown(after)} points; "
            f"change {change['mean']:+.2f} ± {change['sd']:.2f} (up at {result['change_up_at_seeds']} seeds)"
        )
        if result["split_spread_points"]:
            head += f"; {result['split_runs']} splits at one seed: {_shown(result['split_spread_points'])}"
        lines.append("\n" + head)
        lines.append("\n| procedure | false alarms (A/A) | catches (A/B) | detects above (median) |")
        lines.append("|---|---|---|---|")
        for row in result["procedures"]:
            size = f"±{row['detectable_points']:.1f} pts" if row["detectable_points"] is not None else ""
            alarms, catches = 100 * row["false_alarms"], 100 * row["catches"]
            lines.append(f"| {row['procedure']} | {alarms:.1f}% | {catches:.1f}% | {size} |")
    return "\n".join(lines) + "\n"


def _shown(spread: dict[str, float]) -> str:
    return f"{spread['mean']:.2f} ± {spread['sd']:.2f}"
