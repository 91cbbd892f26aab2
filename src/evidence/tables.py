"""The comparison's tables: the study's table per model and the model-against-model verdicts.

Pure functions of the collected runs and the statistics (src/evidence/verdicts.py); the compare stage
writes them as `reports/comparison.{csv,md}`, and `make report` reuses `markdown_table`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from src.evidence.stats import format_p
from src.ground.params import Params

SCORES = ("accuracy", "precision", "recall", "f1")
METRIC_KEYS = (*SCORES, "param_count", "trainable_params", "non_trainable_params", "epochs")

# The original study's results on the official CIFAR-10 test set (10 epochs, Adam, batch 32).
REFERENCE = pd.DataFrame(
    [
        ("mlp_bn", "MLP with BatchNorm", 0.5116, 0.5363, 0.5116, 0.5116, 1_710_346),
        ("mlp_l2", "MLP with L2", 0.3970, 0.3903, 0.3970, 0.3794, 1_578_506),
        ("simple_cnn", "Simple CNN", 0.6909, 0.6927, 0.6909, 0.6878, 167_562),
        ("cnn_da_dropout", "CNN with DA and Dropout", 0.6956, 0.6956, 0.6956, 0.6921, 315_722),
        ("resnet", "ResNet", 0.8137, 0.8195, 0.8137, 0.8142, 437_674),
    ],
    columns=["id", "model", *SCORES, "param_count"],
)


def comparison_table(params: Params, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the scores' means over seeds (the scores, with one seed), their
    standard deviations over seeds (empty with one seed), parameter counts and epochs."""
    grouped = runs.groupby("id", sort=False)
    means = grouped[list(SCORES)].mean().round(6)
    spreads = grouped[list(SCORES)].std(ddof=1).round(6).add_suffix("_std")
    fixed = grouped[list(METRIC_KEYS[len(SCORES) :])].first()
    table = pd.concat([means, spreads, fixed], axis=1).reindex(list(params.models))
    table.insert(0, "seeds", grouped.size())
    table.insert(0, "model", [params.models[model_id].display_name for model_id in table.index])
    return table.rename_axis("id").reset_index()


def with_intervals(table: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """The table with each score's 95% interval (<score>_low, <score>_high) beside it."""
    table = table.copy()
    for score in SCORES:
        position = table.columns.get_loc(score) + 1
        table.insert(position, f"{score}_high", [summary["models"][m][score]["high"] for m in table["id"]])
        table.insert(position, f"{score}_low", [summary["models"][m][score]["low"] for m in table["id"]])
    return table


def _points(value: float | None, sign: str = "+") -> str:
    return "–" if value is None else f"{100 * value:{sign}.2f}"


def probability(p_better: float | None, seed_pairs: int) -> str:
    """P(A > B) with the number of pairs of runs it rests on (no interval: too few to be honest)."""
    return "–" if p_better is None else f"{p_better:.2f} ({seed_pairs} pairs of runs)"


def pairs_markdown(params: Params, summary: dict[str, Any]) -> str:
    """The pairwise comparisons as a table, with one verdict each (naming the better model)."""
    names = {model_id: config.display_name for model_id, config in params.models.items()}
    one_seed = all(pair["test"] == "one seed each" for pair in summary["pairs"])
    rows = []
    for pair in summary["pairs"]:
        decided = pair["verdict"]
        if decided.startswith(("better", "worse")):  # name the model that is better
            leader = names[pair["a"] if pair["difference"] > 0 else pair["b"]]
            decided = f"{leader} better, {decided.split(', ', 1)[1]}"
        row = {
            "models": f"{names[pair['a']]} − {names[pair['b']]}",
            "accuracy difference": f"{_points(pair['difference'])} pts",
            "interval (Holm level)": "–"
            if pair["low"] is None
            else f"[{_points(pair['low'])}, {_points(pair['high'])}] ({100 * pair['confidence']:.1f}%)",
            "test": pair["test"],
        }
        if one_seed:
            mcnemar = pair["mcnemar_p"]
            runs = pair["mcnemar_runs"]
            row["McNemar p (test set only)"] = "–" if mcnemar is None else f"{format_p(mcnemar)} ({runs})"
        else:
            row["p"] = "–" if pair["p"] is None else format_p(pair["p"])
            row["Holm-adjusted p"] = "–" if pair["p_holm"] is None else format_p(pair["p_holm"])
            images = pair.get("p_these_images")
            row["p on these images only"] = "–" if images is None else format_p(images)
            row["P(first > second)"] = probability(pair["p_a_better"], pair["seed_pairs"])
        row["verdict"] = decided
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False)


def markdown_table(table: pd.DataFrame) -> str:
    """The study's table: display names, the four scores (mean ± standard deviation over
    seeds where there are several), parameters."""
    shown = table[["model", *SCORES, "param_count"]].rename(columns={"param_count": "parameters"})
    several = "seeds" in table and (table["seeds"] > 1).any()
    if several:
        for score in SCORES:
            shown[score] = [
                f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"
                for mean, std, seeds in zip(table[score], table[f"{score}_std"], table["seeds"], strict=True)
            ]
        shown.insert(1, "seeds", table["seeds"])
    if "accuracy_low" in table:
        position = list(shown.columns).index("accuracy") + 1
        shown.insert(
            position,
            "accuracy 95% interval",
            [
                f"[{low:.4f}, {high:.4f}]"
                for low, high in zip(table["accuracy_low"], table["accuracy_high"], strict=True)
            ],
        )
    return shown.to_markdown(index=False, floatfmt=".4f", intfmt=",")


def _floor(summary: dict[str, Any]) -> str:
    """The test set's own noise floor, over the pairs: the gap's standard error from the
    sampling of the test images alone."""
    floors = [pair["test_set_se"] for pair in summary["pairs"] if pair.get("test_set_se")]
    if not floors:
        return ""
    return (
        f" The test set's own noise floor: the sampling of its {summary['test_images']:,} images alone "
        f"leaves a standard error of {100 * min(floors):.2f} to {100 * max(floors):.2f} pts on these gaps, "
        "however many seeds are trained"
    )


def _spread_and_method(seeds: int, summary: dict[str, Any]) -> tuple[str, str]:
    """What the table's ± means, and how the verdicts below it are reached."""
    if seeds > 1:
        spread = "mean ± standard deviation over seeds; the interval is the t interval of the mean over seeds"
        method = (
            "the question is whether one model is better **on images like the test set**, not on these "
            f"{summary['test_images']:,} images alone, so each verdict counts both sources of noise: the "
            f"{seeds} training seeds and the sampling of the test images (a two-level t-test on which images "
            "each run got right; the seeds of two architectures share nothing, so they are not paired). "
            f"The verdicts are Holm-corrected over the {len(summary['pairs'])} comparisons, so the chance "
            "of any false call in this table is at most 5%; a gap is called only where the Holm-adjusted p "
            "is below 0.05. The interval is at the level the corrected test ran at (shown; at least 95%), so "
            'it excludes 0 exactly where a gap is called; "within noise" quotes the gap the test would find '
            'four times in five at that level. "p on these images only" answers the narrower question (seeds '
            "only, the test set held fixed). P(first > second) is the share of pairs of runs in which the "
            f"first model scores higher.{_floor(summary)}"
        )
    else:
        spread = "one seed; the accuracy interval is Wilson's, over the test images"
        method = (
            "one seed per model: no verdict, since one run per side cannot tell a model's lead from "
            "retraining noise. McNemar's p measures the test set's noise only; add seeds "
            "(`seeds: [42, 1, 2]`) for verdicts"
        )
    return spread, method


def _budgets_section(by_budget: str) -> str:
    return (
        "## The ranking at every training budget\n\n"
        "Each run's test predictions after every epoch (reported, never used to choose anything): the "
        "models ranked at each budget, each against the next one down with the same task-level verdict, "
        "Holm-corrected over that budget's steps. Figure: `figures/test_accuracy_by_epoch.png`.\n\n"
        f"{by_budget}\n\n"
        if by_budget
        else ""
    )


def comparison_markdown(table: pd.DataFrame, pairs: str, summary: dict[str, Any], by_budget: str = "") -> str:
    """comparison.md: the scores, model against model, the ranking at every budget, the original study."""
    seeds = int(table["seeds"].max())
    spread, method = _spread_and_method(seeds, summary)
    budgets = _budgets_section(by_budget)
    return (
        "# Model comparison (test set)\n\n"
        f"Accuracy and macro-averaged precision, recall and F1 on the {summary['test_images']:,} test "
        f"images ({spread}). `statistics.json` holds every score's 95% interval.\n\n"
        f"{markdown_table(table)}\n\n"
        "## Model against model\n\n"
        f"Every pair on the same test images: {method} (method: docs/statistics.md).\n\n"
        f"{pairs}\n\n"
        f"{budgets}"
        "## Reference: the original study (official CIFAR-10)\n\n"
        f"{markdown_table(REFERENCE)}\n"
    )
