"""Every path the pipeline writes or reads, in one place (dvc.yaml names the same paths).

Kept apart from the stages so that a stage, `make report` or the study runner can find another
stage's outputs without importing (and so, in dvc.yaml, depending on) its code. One training
run is one model trained with one seed: stage train@<id>-<seed>.
"""

from __future__ import annotations

from pathlib import Path

# download and prepare
RAW_TARBALL = Path("data/raw/cifar-10-binary.tar.gz")
PREPARED_DIR = Path("data/prepared")  # train.npz, val.npz, test.npz
DATA_FACTS = Path("reports/data.json")  # counts per split and class

# train@<id>-<seed>
MODELS_DIR = Path("models")
TRAIN_REPORTS_DIR = Path("reports/train")
TIMINGS_DIR = Path("reports/timings")  # per run, tracked by git, not by DVC: they vary run to run

# compare, and what make report reads of it
REPORTS = Path("reports")
METRICS_DIR = REPORTS / "metrics"  # <id>.json: the four test scores per model
PREDICTIONS_DIR = REPORTS / "predictions"  # <id>-<seed>.csv
CURVES = REPORTS / "curves.csv"
STATISTICS = REPORTS / "statistics.json"
COMPARISON_CSV = REPORTS / "comparison.csv"
COMPARISON_MD = REPORTS / "comparison.md"
FIGURES = REPORTS / "figures"
PR_REPORT = REPORTS / "pr_report.md"  # make report


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


def timing_path(model_id: str, seed: int) -> Path:
    """train@<id>-<seed>'s training time, memory and machine (not a DVC output: they vary)."""
    return TIMINGS_DIR / f"{run_name(model_id, seed)}.json"
