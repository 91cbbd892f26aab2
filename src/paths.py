"""Where the training stages write, shared with the stages that read their outputs.

Kept apart from src/train.py so that `compare` can find a run's reports without importing
(and so, in dvc.yaml, depending on) the training code. One training run is one model
trained with one seed: stage train@<id>-<seed>.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path("models")
TRAIN_REPORTS_DIR = Path("reports/train")


def run_name(model_id: str, seed: int) -> str:
    """The name of one training run, as in its DVC stage train@<id>-<seed>."""
    return f"{model_id}-{seed}"


def split_run_name(name: str) -> tuple[str, int] | None:
    """(model id, seed) of a run name made by `run_name`; None for any other name."""
    model_id, _, seed = name.rpartition("-")
    return (model_id, int(seed)) if model_id and seed.isdigit() else None


def model_path(model_id: str, seed: int) -> Path:
    """The trained model of train@<id>-<seed>."""
    return MODELS_DIR / f"{run_name(model_id, seed)}.keras"


def live_dir(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s reports: DVCLive's curves and metrics, test predictions, run.json."""
    return TRAIN_REPORTS_DIR / run_name(model_id, seed)


def predictions_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s test predictions: actual,predicted class names, in test-set order."""
    return live_dir(model_id, seed) / "predictions.csv"
