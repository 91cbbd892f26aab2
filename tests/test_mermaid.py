"""src/evidence/mermaid.py: charts in the exact `xychart-beta` syntax of Mermaid's documentation,
which GitHub renders in Markdown:

    xychart-beta
        title "..."
        x-axis [a, b, c]
        y-axis "label" 4000 --> 11000
        bar [5000, 6000, 7500]
        line [5000, 6000, 7500]
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from src.evidence.mermaid import curves_chart, scores_chart

LINE = {
    "title": r'title "[^"]+"',
    "x-axis": r'x-axis \[("[^"]*"(, "[^"]*")*)\]',
    "y-axis": r'y-axis "[^"]+" -?[0-9.]+ --> -?[0-9.]+',
    "bar": r"bar \[(-?[0-9.]+(, -?[0-9.]+)*)\]",
    "line": r"line \[(-?[0-9.]+(, -?[0-9.]+)*)\]",
}


def _parse(block: str) -> dict[str, list[str]]:
    """The chart's statements by keyword, each checked against the documented grammar."""
    lines = block.splitlines()
    assert lines[0] == "```mermaid" and lines[1] == "xychart-beta" and lines[-1] == "```"
    statements: dict[str, list[str]] = {}
    for line in lines[2:-1]:
        assert line.startswith("    "), line
        keyword = line.strip().split(" ")[0]
        assert re.fullmatch(LINE[keyword], line.strip()), line
        statements.setdefault(keyword, []).append(line.strip())
    return statements


def _values(statement: str) -> list[float]:
    return [float(value) for value in statement.split("[", 1)[1].rstrip("]").split(", ")]


def test_scores_chart_draws_each_models_mean_and_interval_from_zero() -> None:
    table = pd.DataFrame(
        {
            "id": ["mlp", "cnn"],
            "accuracy": [0.49, 0.68],
            "accuracy_low": [0.44, float("nan")],  # one seed: no interval
            "accuracy_high": [0.54, float("nan")],
        }
    )
    chart = _parse(scores_chart(table))
    assert chart["x-axis"] == ['x-axis ["mlp", "cnn"]']
    assert chart["y-axis"] == ['y-axis "test accuracy (%)" 0 --> 100']
    assert [_values(s) for s in chart["bar"]] == [[49.0, 68.0]]
    assert [_values(s) for s in chart["line"]] == [[44.0, 68.0], [54.0, 68.0]]


def test_curves_chart_has_one_line_per_model_over_the_epochs_all_ran() -> None:
    rows = [
        {"id": model_id, "seed": seed, "epoch": epoch, "test_accuracy": base + 0.01 * epoch + 0.002 * seed}
        for model_id, base, epochs in (("mlp", 0.3, 3), ("cnn", 0.5, 4))
        for seed in (1, 2)
        for epoch in range(1, epochs + 1)
    ]
    chart = _parse(curves_chart(pd.DataFrame(rows)))
    assert chart["x-axis"] == ['x-axis ["1", "2", "3"]']  # cnn's 4th epoch: mlp has none
    lines = [_values(statement) for statement in chart["line"]]
    assert lines[0] == pytest.approx([31.3, 32.3, 33.3]) and lines[1] == pytest.approx([51.3, 52.3, 53.3])
    assert "top to bottom at epoch 3: cnn, mlp" in chart["title"][0]
    low, high = (float(v) for v in re.findall(r"(-?[0-9.]+) --> (-?[0-9.]+)", chart["y-axis"][0])[0])
    assert low <= min(map(min, lines)) and max(map(max, lines)) <= high
