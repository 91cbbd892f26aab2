"""The test-predictions file of a run: its one writer and its one reader.

`reports/train/<id>-<seed>/predictions.csv` (copied by compare to
`reports/predictions/<id>-<seed>.csv`): a header `actual,predicted`, then one row per test image
in test-set order with the true and the predicted class names, which DVC's confusion-matrix
template reads and from which the statistics are recomputed without retraining.
"""

from __future__ import annotations

import numpy as np

from src.ground.cli import StageError
from src.ground.data import CLASSES

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


# --- every epoch's test predictions ---------------------------------------------------------
# `reports/train/<id>-<seed>/epoch_predictions.tsv`: a header `epoch<TAB>predicted`, then one
# line per epoch (from 1): the predicted class index (one digit, 0-9) of every test image, in
# test-set order. With the true labels of predictions.csv it gives any shorter budget's scores
# and verdicts without retraining (about 10 KB an epoch for 10,000 images).
EPOCH_HEADER = "epoch\tpredicted"


def encode_epoch(y_pred: np.ndarray) -> str:
    """One epoch's predictions as a string of class digits."""
    if len(CLASSES) > 10:
        raise ValueError("one digit per prediction holds at most 10 classes")
    return "".join(map(str, np.asarray(y_pred, dtype=np.int64).tolist()))


def epochs_to_tsv(encoded: list[str]) -> str:
    return EPOCH_HEADER + "\n" + "".join(f"{epoch}\t{line}\n" for epoch, line in enumerate(encoded, 1))


def parse_epochs(text: str, path: str, images: int) -> np.ndarray:
    """An epoch-predictions file as an (epochs, images) array of class indices; stops on
    anything else, naming the file."""
    lines = text.splitlines()
    if not lines or lines[0] != EPOCH_HEADER:
        raise StageError(
            f"{path} is not an epoch-predictions file ({EPOCH_HEADER!r}): rerun its training stage"
        )
    rows = []
    for number, line in enumerate(lines[1:], 1):
        epoch, _, digits = line.partition("\t")
        if epoch != str(number) or len(digits) != images or not digits.isdigit():
            raise StageError(
                f"{path}, epoch {number}: expected {images:,} class digits after '{number}\\t': "
                "the file is truncated or of other test images; rerun its training stage"
            )
        rows.append(np.frombuffer(digits.encode(), dtype=np.uint8) - ord("0"))
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), images)
