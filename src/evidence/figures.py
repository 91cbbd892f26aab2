"""The comparison's figures (matplotlib): scores per model and learning curves over seeds.

With several seeds, a curve is the mean over seeds with a band of ±1 standard deviation in the
model's colour, and the bar chart shows each seed's score as a dot beside the mean's 95%
interval, so the seed spread is visible where a single line would hide it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src.evidence.tables import SCORES
from src.ground.files import atomic_write
from src.ground.params import Params

LABELS = ("Accuracy", "Precision (macro)", "Recall (macro)", "F1 (macro)")


def _integer_epochs(axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save_figure(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png"))
    plt.close(figure)


def mean_band(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per epoch: the mean over seeds of `column`, and its standard deviation (0 with one seed)."""
    grouped = runs.groupby("epoch")[column]
    return pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1).fillna(0.0)}).reset_index()


def _plot_band(
    axes: Any, runs: pd.DataFrame, column: str, color: str, label: str | None, marker: str = "o"
) -> None:
    band = mean_band(runs, column)
    axes.plot(band["epoch"], band["mean"], marker=marker, markersize=3, color=color, label=label)
    if (band["sd"] > 0).any():
        low, high = band["mean"] - band["sd"], band["mean"] + band["sd"]
        axes.fill_between(band["epoch"], low, high, color=color, alpha=0.2, linewidth=0)


def plot_metrics(table: pd.DataFrame, runs: pd.DataFrame, path: Path) -> None:
    """Grouped bar chart: the four scores per model (means over seeds, where there are several)
    with their 95% intervals as error bars and, with several seeds, each seed's score as a dot."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    shown = table.set_index("model")[list(SCORES)]
    shown.columns = list(LABELS)
    figure, axes = plt.subplots(figsize=(10, 5))
    width = 0.8
    error = _interval_errors(table)
    shown.plot.bar(ax=axes, rot=15, width=width, yerr=error, capsize=2, error_kw={"elinewidth": 0.8})
    several = runs.groupby("id").size().max() > 1
    if several:
        _seed_dots(axes, table, runs, width)
    seeds = int(table["seeds"].max())
    axes.set_ylim(0, 1)
    axes.set_ylabel("score on the test set")
    axes.set_xlabel("")
    axes.set_title(
        f"CIFAR-10: test scores per model, mean of {seeds} seeds"
        if several
        else "CIFAR-10: test scores per model"
    )
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", ncols=5, fontsize="small")
    for container in axes.containers:
        if isinstance(container, BarContainer):  # not the error bars
            axes.bar_label(container, fmt="%.2f", fontsize=6, padding=1)
    _save_figure(figure, path)


def _interval_errors(table: pd.DataFrame) -> np.ndarray:
    """Each score's 95% interval as asymmetric error bars, shape (scores, 2, models)."""
    return np.stack(
        [
            np.stack([table[score] - table[f"{score}_low"], table[f"{score}_high"] - table[score]])
            for score in SCORES
        ]
    )


def _seed_dots(axes: Any, table: pd.DataFrame, runs: pd.DataFrame, width: float) -> None:
    """Each seed's score as a black dot on its bar."""
    offsets = (np.arange(len(SCORES)) - (len(SCORES) - 1) / 2) * width / len(SCORES)
    for position, model_id in enumerate(table["id"]):
        mine = runs[runs["id"] == model_id]
        for offset, score in zip(offsets, SCORES, strict=True):
            axes.scatter(
                np.full(len(mine), position + offset),
                mine[score],
                s=7,
                color="black",
                zorder=3,
                linewidths=0,
            )
    axes.scatter([], [], s=7, color="black", label="one seed")


def plot_learning_curves(curves: pd.DataFrame, model_id: str, display_name: str, path: Path) -> None:
    """Accuracy and loss per epoch, train vs validation, for one model (mean over seeds, ±1 sd band)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    runs = curves[curves["id"] == model_id]
    seeds = runs["seed"].nunique()
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for prefix, label, color in (("train", "train", "C0"), ("val", "validation", "C1")):
            _plot_band(ax, runs, f"{prefix}_{metric}", color, label)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    spread = f": mean of {seeds} seeds, band ±1 sd" if seeds > 1 else ""
    figure.suptitle(f"{display_name} ({model_id}): learning curves{spread}")
    _save_figure(figure, path)


def plot_validation_accuracy(params: Params, curves: pd.DataFrame, path: Path) -> None:
    """Every model's validation accuracy per epoch in one figure (mean over seeds, ±1 sd band)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for index, (model_id, config) in enumerate(params.models.items()):
        _plot_band(axes, curves[curves["id"] == model_id], "val_accuracy", f"C{index}", config.display_name)
    seeds = curves["seed"].nunique()
    axes.set_xlabel("epoch")
    _integer_epochs(axes)
    axes.set_ylabel("validation accuracy")
    axes.set_title(
        f"Validation accuracy per epoch (mean of {seeds} seeds, band ±1 sd)"
        if seeds > 1
        else "Validation accuracy per epoch"
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save_figure(figure, path)


def plot_test_accuracy_by_epoch(params: Params, curves: pd.DataFrame, budgets: list[int], path: Path) -> None:
    """Every model's test accuracy after each epoch (mean over seeds, ±1 sd band), the budgets
    marked: the ranking at every training budget. Test scores are reported, never used to choose."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for index, (model_id, config) in enumerate(params.models.items()):
        _plot_band(axes, curves[curves["id"] == model_id], "test_accuracy", f"C{index}", config.display_name)
    for budget in budgets:
        axes.axvline(budget, color="grey", linewidth=0.8, linestyle=":")
    seeds = curves["seed"].nunique()
    axes.set_xlabel("epochs of training (the budget)")
    _integer_epochs(axes)
    axes.set_ylabel("test accuracy")
    spread = f"mean of {seeds} seeds, band ±1 sd" if seeds > 1 else "one seed"
    axes.set_title(f"Test accuracy after each epoch ({spread})")
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save_figure(figure, path)
