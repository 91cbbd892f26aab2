"""Every path and file name the project writes or reads, in one place (dvc.yaml names the same paths).

Kept apart from the stages so that a stage, `make report` or the study runner can find another
stage's outputs without importing (and so, in dvc.yaml, depending on) its code. One training
run is one model trained with one seed: stage train@<id>-<seed>.
"""

from __future__ import annotations

import os
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parents[1]  # the project's code: src/

# download and prepare
RAW_TARBALL = Path("data/raw/cifar-10-binary.tar.gz")
PREPARED_DIR = Path("data/prepared")  # train.npz, val.npz, test.npz (split_path)
SPLIT_NAMES = ("train", "val", "test")
DATA_FACTS = Path("reports/data.json")  # counts per split and class

# train@<id>-<seed>
MODELS_DIR = Path("models")
TRAIN_REPORTS_DIR = Path("reports/train")
TIMINGS_DIR = Path("reports/timings")  # per run, tracked by git, not by DVC: they vary run to run
# The last completed epoch of an unfinished run, outside DVC's outputs (DVC deletes those before
# it reruns a stage); removed when the run completes (src/learning/resume.py). Runs in worktrees
# (make repro side by side, SLURM tasks) keep theirs in the main workspace's, named here.
BACKUPS_VARIABLE = "TRAIN_BACKUPS_DIR"
BACKUPS_DIR = Path(os.environ.get(BACKUPS_VARIABLE) or ".dvc/tmp/train-backups")
BACKUP_WEIGHTS = "backup.weights.h5"  # Keras's weights file: weights and optimizer state
BACKUP_STATE = "state.json"  # the epoch, every epoch's scores, the backup's key

# compare, and what make report reads of it
REPORTS = Path("reports")
METRICS_DIR = REPORTS / "metrics"  # <id>.json: the four test scores per model
PREDICTIONS_DIR = REPORTS / "predictions"  # <id>-<seed>.csv
CURVES = REPORTS / "curves.csv"
STATISTICS = REPORTS / "statistics.json"
COMPARISON_CSV = REPORTS / "comparison.csv"
COMPARISON_MD = REPORTS / "comparison.md"
FIGURES = REPORTS / "figures"
METRICS_FIGURE = FIGURES / "metrics_comparison.png"
VAL_ACCURACY_FIGURE = FIGURES / "val_accuracy.png"
LEARNING_CURVES_DIR = FIGURES / "learning_curves"  # <id>.png
BUDGET_FIGURE = FIGURES / "test_accuracy_by_epoch.png"
PR_REPORT = REPORTS / "pr_report.md"  # make report

# make repro / make study: worktrees, logs and dvc.lock entries of the runs side by side
STUDY_DIR = Path(".dvc/tmp/study")
SLURM_JOBS = "jobs.json"  # in a SLURM submission's folder: its stages, commit and job ids


def split_path(split: str, directory: Path = PREPARED_DIR) -> Path:
    """A prepared split's arrays (x: uint8 images, y: labels): train, val or test."""
    return directory / f"{split}.npz"


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


def run_record_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s run.json: what decided its bytes (kernels, shards, threads, versions)."""
    return live_dir(model_id, seed) / "run.json"


def live_metrics_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s DVCLive summary: final test scores, parameter counts."""
    return live_dir(model_id, seed) / "metrics.json"


def curve_path(model_id: str, seed: int, split: str, metric: str) -> Path:
    """One DVCLive curve of train@<id>-<seed> (split: train, eval or test), a row per epoch."""
    return live_dir(model_id, seed) / "plots" / "metrics" / split / f"{metric}.tsv"


def predictions_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s test predictions: actual,predicted class names, in test-set order."""
    return live_dir(model_id, seed) / "predictions.csv"


def epoch_predictions_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s test predictions after every epoch (src/ground/predictions.py)."""
    return live_dir(model_id, seed) / "epoch_predictions.tsv"


def timing_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s training time, memory and machine (not a DVC output: they vary)."""
    return TIMINGS_DIR / f"{run_name(model_id, seed)}.json"


def backup_dir(run: str) -> Path:
    """Where the unfinished run `run` (run_name) keeps its last completed epoch."""
    return BACKUPS_DIR / run
