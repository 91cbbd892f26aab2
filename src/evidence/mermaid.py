"""Charts as Mermaid `xychart-beta` blocks, which GitHub draws inside Markdown (pull-request
comments included) with no image host: each model's test accuracy with its interval, and test
accuracy after every epoch. The syntax is Mermaid's documented one (title, x-axis, y-axis
"label" min --> max, bar, line); xychart has no legend, so titles name what each series is."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def _numbers(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{value:.2f}" for value in values) + "]"


def _labels(names: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{name.replace(chr(34), chr(39))}"' for name in names) + "]"


def _y_axis(label: str, values: Sequence[float]) -> str:
    low, high = max(0, math.floor(min(values)) - 1), min(100, math.ceil(max(values)) + 1)
    return f'y-axis "{label}" {low} --> {high}'


def _block(title: str, lines: list[str]) -> str:
    body = "\n".join(f"    {line}" for line in [f'title "{title}"', *lines])
    return f"```mermaid\nxychart-beta\n{body}\n```"


def scores_chart(comparison: pd.DataFrame) -> str:
    """Bars: each model's mean test accuracy (%) over seeds; lines: the ends of its interval
    (the mean itself where one seed gives none)."""
    means = [100 * value for value in comparison["accuracy"]]
    lows = [100 * value for value in comparison["accuracy_low"].fillna(comparison["accuracy"])]
    highs = [100 * value for value in comparison["accuracy_high"].fillna(comparison["accuracy"])]
    return _block(
        "Test accuracy (%): bars the mean over seeds, lines the ends of its interval",
        [
            f"x-axis {_labels(list(comparison['id']))}",
            'y-axis "test accuracy (%)" 0 --> 100',  # bars start at zero, or they exaggerate
            f"bar {_numbers(means)}",
            f"line {_numbers(lows)}",
            f"line {_numbers(highs)}",
        ],
    )


def curves_chart(curves: pd.DataFrame) -> str:
    """One line per model: its test accuracy (%) after each epoch, mean over seeds, over the
    epochs every model ran; the title lists the models from the top line down at the end."""
    means = curves.groupby(["id", "epoch"], sort=False)["test_accuracy"].mean().unstack("epoch")
    epochs = [epoch for epoch in means.columns if means[epoch].notna().all()]
    means = 100 * means[epochs]
    order = list(means[epochs[-1]].sort_values(ascending=False).index)
    return _block(
        f"Test accuracy (%) after each epoch, mean over seeds; top to bottom at epoch {epochs[-1]}: "
        + ", ".join(order),
        [
            f"x-axis {_labels([str(epoch) for epoch in epochs])}",
            _y_axis("test accuracy (%)", list(means.to_numpy().ravel())),
            *(f"line {_numbers(list(means.loc[model_id]))}" for model_id in means.index),
        ],
    )
