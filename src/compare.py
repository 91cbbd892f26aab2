"""Stage `compare`: put every model of params.yaml side by side.

Reads each model's `reports/train/<id>/` (written by train@<id>) for the models listed in
params.yaml, in that order (never by globbing, so a removed model's stale files are
ignored), and writes:

- `reports/metrics.json`: test accuracy, macro precision/recall/F1, parameter counts and
  epochs keyed by model id; deterministic, so `dvc metrics diff` shows only real changes;
- `reports/timings.json`: training seconds and images/s per model (these vary run to run);
- `reports/comparison.csv` and `reports/comparison.md`: the study's table, plus the
  original study's reference numbers for context;
- `reports/figures/metrics_comparison.png`, `reports/figures/val_accuracy.png` and
  `reports/figures/learning_curves/<id>.png`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from src.cli import StageError, run_stage
from src.files import atomic_write, write_json, write_text
from src.params import Params, load_params
from src.train import live_dir

log = logging.getLogger(__name__)

REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
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


def _read_json(path: Path, model_id: str) -> dict[str, Any]:
    if not path.is_file():
        raise StageError(f"{path} not found: run `dvc repro train@{model_id}` first")
    return json.loads(path.read_text())


def _read_curve(model_id: str, split: str, metric: str) -> pd.Series:
    path = live_dir(model_id) / "plots" / "metrics" / split / f"{metric}.tsv"
    if not path.is_file():
        raise StageError(f"{path} not found: run `dvc repro train@{model_id}` first")
    curve = pd.read_csv(path, sep="\t")
    return pd.Series(curve[metric].to_numpy(), index=curve["step"].to_numpy() + 1, name=metric)


def collect(params: Params) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per-model test metrics and timings, in params.yaml's order."""
    metrics, timings = {}, {}
    for model_id in params.models:
        test = _read_json(live_dir(model_id) / "metrics.json", model_id).get("test", {})
        missing = [key for key in METRIC_KEYS if key not in test]
        if missing:
            raise StageError(
                f"{live_dir(model_id)}/metrics.json lacks {missing}: rerun `dvc repro train@{model_id}`"
            )
        metrics[model_id] = {key: test[key] for key in METRIC_KEYS}
        run = _read_json(live_dir(model_id) / "run.json", model_id)
        timings[model_id] = {
            "train_seconds": run["train_seconds"],
            "train_images_per_second": run["train_images_per_second"],
            "peak_rss_mib": run.get("peak_rss_mib"),  # absent in runs recorded before it was
            "device": run["environment"]["device"],
        }
    return metrics, timings


def comparison_table(params: Params, metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {"id": model_id, "model": params.models[model_id].display_name, **values}
        for model_id, values in metrics.items()
    ]
    return pd.DataFrame(rows, columns=["id", "model", *METRIC_KEYS])


def markdown_table(table: pd.DataFrame) -> str:
    """The study's table: display names, the four scores, parameters."""
    shown = table[["model", *SCORES, "param_count"]].rename(columns={"param_count": "parameters"})
    return shown.to_markdown(index=False, floatfmt=".4f", intfmt=",")


def comparison_markdown(table: pd.DataFrame) -> str:
    return (
        "# Model comparison (test set)\n\n"
        "Accuracy and macro-averaged precision, recall and F1 on the 10,000 test images.\n\n"
        f"{markdown_table(table)}\n\n"
        "## Reference: the original study (official CIFAR-10)\n\n"
        f"{markdown_table(REFERENCE)}\n"
    )


def _integer_epochs(axes) -> None:  # type: ignore[no-untyped-def]
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save_figure(figure, path: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png"))
    plt.close(figure)


def plot_metrics(table: pd.DataFrame, path: Path) -> None:
    """Grouped bar chart: the four scores per model."""
    import matplotlib.pyplot as plt

    shown = table.set_index("model")[list(SCORES)]
    shown.columns = ["Accuracy", "Precision (macro)", "Recall (macro)", "F1 (macro)"]
    figure, axes = plt.subplots(figsize=(10, 5))
    shown.plot.bar(ax=axes, rot=15, width=0.8)
    axes.set_ylim(0, 1)
    axes.set_ylabel("score on the test set")
    axes.set_xlabel("")
    axes.set_title("CIFAR-10: test scores per model")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", ncols=4, fontsize="small")
    for container in axes.containers:
        axes.bar_label(container, fmt="%.2f", fontsize=6, padding=1)
    _save_figure(figure, path)


def plot_learning_curves(model_id: str, display_name: str, path: Path) -> None:
    """Accuracy and loss per epoch, train vs validation, for one model."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for split, label in (("train", "train"), ("eval", "validation")):
            curve = _read_curve(model_id, split, metric)
            ax.plot(curve.index, curve.to_numpy(), marker="o", label=label)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(f"{display_name} ({model_id}): learning curves")
    _save_figure(figure, path)


def plot_validation_accuracy(params: Params, path: Path) -> None:
    """Every model's validation accuracy per epoch in one figure."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for model_id, config in params.models.items():
        curve = _read_curve(model_id, "eval", "accuracy")
        axes.plot(curve.index, curve.to_numpy(), marker="o", label=config.display_name)
    axes.set_xlabel("epoch")
    _integer_epochs(axes)
    axes.set_ylabel("validation accuracy")
    axes.set_title("Validation accuracy per epoch")
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save_figure(figure, path)


def compare(params: Params) -> pd.DataFrame:
    """Write the comparison reports and figures; return the comparison table."""
    import matplotlib

    matplotlib.use("Agg")
    metrics, timings = collect(params)
    table = comparison_table(params, metrics)
    write_json(REPORTS / "metrics.json", metrics)
    write_json(REPORTS / "timings.json", timings)
    write_text(REPORTS / "comparison.csv", table.to_csv(index=False, float_format="%.6f"))
    write_text(REPORTS / "comparison.md", comparison_markdown(table))
    plot_metrics(table, FIGURES / "metrics_comparison.png")
    plot_validation_accuracy(params, FIGURES / "val_accuracy.png")
    for model_id, config in params.models.items():
        plot_learning_curves(model_id, config.display_name, FIGURES / "learning_curves" / f"{model_id}.png")
    log.info("%s", markdown_table(table))
    return table


def main() -> None:
    compare(load_params())


if __name__ == "__main__":
    run_stage(main)
