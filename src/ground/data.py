"""Facts about CIFAR-10 and the prepared arrays that several stages share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.ground.cli import StageError
from src.ground.paths import PREPARED_DIR, split_path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)


class DataError(StageError):
    """The tarball or the prepared data is not what the pipeline expects."""


def load_split(name: str, out_dir: Path = PREPARED_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Read one prepared split; a missing or foreign file stops with the fix."""
    path = split_path(name, out_dir)
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro prepare` first")
    with np.load(path, allow_pickle=False) as archive:
        x, y = archive["x"], archive["y"]
    if x.dtype != np.uint8 or x.shape[1:] != IMAGE_SHAPE or len(x) != len(y):
        raise DataError(f"{path} does not hold uint8 32×32×3 images with labels: run `dvc repro prepare`")
    return x, y
