"""The test-predictions file of a run: its one writer and its one reader.

`reports/train/<id>-<seed>/predictions.csv` (copied by compare to
`reports/predictions/<id>-<seed>.csv`): a header `actual,predicted`, then one row per test image
in test-set order with the true and the predicted class names, which DVC's confusion-matrix
template reads and from which the statistics are recomputed without retraining.
"""

from __future__ import annotations

import numpy as np

from src.cli import StageError
from src.data import CLASSES

HEADER = "actual,predicted"


def to_csv(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """The predictions as CSV (about 170 KB for 10,000 images)."""
    names = np.asarray(CLASSES)
    rows = [f"{actual},{predicted}" for actual, predicted in zip(names[y_true], names[y_pred], strict=True)]
    return HEADER + "\n" + "\n".join(rows) + "\n"


def parse(text: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    """A predictions CSV as two arrays of class indices (true, predicted); stops on anything else."""
    index = {name: number for number, name in enumerate(CLASSES)}
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise StageError(f"{path} is not a predictions file ({HEADER}): rerun its training stage")
    try:
        pairs = [tuple(index[name] for name in line.split(",")) for line in lines[1:]]
    except KeyError as err:
        raise StageError(f"{path} names an unknown class {err}: rerun its training stage") from None
    labels = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return labels[:, 0], labels[:, 1]
