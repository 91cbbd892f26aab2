"""Stage `compare`: put every model of params.yaml side by side.

Reads each model's `reports/train/<id>/` (written by train@<id>, cached by DVC) for the
models listed in params.yaml, in that order (never by globbing, so a removed model's stale
files are ignored), and writes the small, git-tracked reports a reviewer reads:

- `reports/metrics/<id>.json`: the model's four test scores (accuracy, macro precision,
  recall and F1), one file per model, so `dvc metrics show` prints one compact row per
  model and `dvc metrics diff` lists only score changes; deterministic bytes;
- `reports/curves.csv`: every model's accuracy and loss per epoch (from 1), train and
  validation, one row per model and epoch, for `dvc plots` (one coloured line per model);
- `reports/predictions/<id>.csv`: the model's test predictions (actual, predicted class),
  for the confusion matrices in `dvc plots` and for statistics without retraining;
- `reports/statistics.json`: each score's 95% interval per model, and every pair of models
  compared on the same test images (difference, interval, p-value, Holm-corrected p);
- `reports/comparison.csv` and `reports/comparison.md`: the study's table with intervals
  and parameter counts, the pairwise verdicts, and the original study's numbers for context;
- `reports/timings.json`: training seconds, images/s and peak memory per model (these vary
  run to run, so they are not metrics);
- `reports/figures/metrics_comparison.png`, `reports/figures/val_accuracy.png` and
  `reports/figures/learning_curves/<id>.png`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src import stats
from src.cli import StageError, run_stage
from src.data import CLASSES
from src.files import atomic_write, write_json, write_text
from src.params import Params, load_params
from src.paths import live_dir, predictions_path, run_name

log = logging.getLogger(__name__)

REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
METRICS_DIR = REPORTS / "metrics"
PREDICTIONS_DIR = REPORTS / "predictions"
CURVES = REPORTS / "curves.csv"
STATISTICS = REPORTS / "statistics.json"
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


def _missing(path: Path, model_id: str, seed: int) -> StageError:
    return StageError(f"{path} not found: run `dvc repro train@{run_name(model_id, seed)}` first")


def _read_json(path: Path, model_id: str, seed: int) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(path, model_id, seed)
    return json.loads(path.read_text())


def _read_curve(model_id: str, seed: int, split: str, metric: str) -> pd.Series:
    path = live_dir(model_id, seed) / "plots" / "metrics" / split / f"{metric}.tsv"
    if not path.is_file():
        raise _missing(path, model_id, seed)
    curve = pd.read_csv(path, sep="\t")
    return pd.Series(curve[metric].to_numpy(), index=curve["step"].to_numpy() + 1, name=metric)


def _runs(params: Params) -> list[tuple[str, int]]:
    """Every training run of params.yaml, model by model, each model's seeds in order."""
    return [(model_id, seed) for model_id in params.models for seed in params.seeds]


def learning_curves(params: Params) -> pd.DataFrame:
    """Accuracy and loss per epoch (from 1), train and validation, of every run, in
    params.yaml's order: one row per model, seed and epoch."""
    frames = []
    for model_id, seed in _runs(params):
        columns = {
            f"{prefix}_{metric}": _read_curve(model_id, seed, split, metric)
            for prefix, split in (("train", "train"), ("val", "eval"))
            for metric in ("accuracy", "loss")
        }
        frame = pd.DataFrame(columns).rename_axis("epoch").reset_index()
        frame.insert(0, "seed", seed)
        frame.insert(0, "model", params.models[model_id].display_name)
        frame.insert(0, "id", model_id)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _remove_stale(directory: Path, suffix: str, names: list[str]) -> None:
    """Remove this stage's files of runs no longer in params.yaml (left by an earlier run
    outside DVC, which clears them itself) so they cannot pass for current ones."""
    for stale in directory.glob(f"*{suffix}"):
        if stale.stem not in names:
            stale.unlink()


def _write_each(directory: Path, suffix: str, contents: dict[str, str]) -> None:
    """One file per name, <name><suffix>, in a directory of this stage's own."""
    for name, text in contents.items():
        write_text(directory / f"{name}{suffix}", text)
    _remove_stale(directory, suffix, list(contents))


def _predictions(model_id: str, seed: int) -> str:
    path = predictions_path(model_id, seed)
    if not path.is_file():
        raise _missing(path, model_id, seed)
    return path.read_text()


def collect(params: Params) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Test metrics of every run (one row per model and seed) and timings per run."""
    rows, timings = [], {}
    for model_id, seed in _runs(params):
        directory = live_dir(model_id, seed)
        test = _read_json(directory / "metrics.json", model_id, seed).get("test", {})
        missing = [key for key in METRIC_KEYS if key not in test]
        if missing:
            stage = f"train@{run_name(model_id, seed)}"
            raise StageError(f"{directory}/metrics.json lacks {missing}: rerun `dvc repro {stage}`")
        rows.append({"id": model_id, "seed": seed, **{key: test[key] for key in METRIC_KEYS}})
        run = _read_json(directory / "run.json", model_id, seed)
        timings[run_name(model_id, seed)] = {
            "train_seconds": run["train_seconds"],
            "train_images_per_second": run["train_images_per_second"],
            "peak_rss_mib": run.get("peak_rss_mib"),
            "device": run["environment"]["device"],
        }
    return pd.DataFrame(rows, columns=["id", "seed", *METRIC_KEYS]), timings


def comparison_table(params: Params, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the scores' means over seeds (the scores, with one seed), their
    standard deviations over seeds (empty with one seed), parameter counts and epochs."""
    grouped = runs.groupby("id", sort=False)
    means = grouped[list(SCORES)].mean().round(6)
    spreads = grouped[list(SCORES)].std(ddof=1).round(6).add_suffix("_std")
    fixed = grouped[list(METRIC_KEYS[len(SCORES) :])].first()
    table = pd.concat([means, spreads, fixed], axis=1).reindex(list(params.models))
    table.insert(0, "seeds", grouped.size())
    table.insert(0, "model", [params.models[model_id].display_name for model_id in table.index])
    return table.rename_axis("id").reset_index()


def prediction_labels(text: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    """A predictions CSV (actual,predicted class names) as two arrays of class indices."""
    index = {name: number for number, name in enumerate(CLASSES)}
    lines = text.splitlines()
    if not lines or lines[0] != "actual,predicted":
        raise StageError(f"{path} is not a predictions file (actual,predicted): rerun its training stage")
    try:
        pairs = [tuple(index[name] for name in line.split(",")) for line in lines[1:]]
    except KeyError as err:
        raise StageError(f"{path} names an unknown class {err}: rerun its training stage") from None
    labels = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return labels[:, 0], labels[:, 1]


def statistics(params: Params, runs: pd.DataFrame, predictions: dict[str, str]) -> dict[str, Any]:
    """95% intervals per model and paired comparisons between models (src/stats.py).

    One seed: Wilson (accuracy) and bootstrap (macro scores) intervals over the test images;
    several: t intervals of the mean over seeds. Pairs: every two models, in params.yaml's
    order, with the difference of accuracy, its interval, the test's p and Holm's p.
    """
    correct: dict[str, np.ndarray] = {}
    models: dict[str, Any] = {}
    truth: np.ndarray | None = None
    for model_id in params.models:
        rows, labels = [], []
        for seed in params.seeds:
            name = run_name(model_id, seed)
            y_true, y_pred = prediction_labels(predictions[name], f"{predictions_path(model_id, seed)}")
            if truth is None:
                truth = y_true
            elif not np.array_equal(truth, y_true):
                raise StageError(f"{name} was tested on other images than the other runs: rerun it")
            labels.append((y_true, y_pred))
            rows.append(y_true == y_pred)
            logged = float(runs[(runs["id"] == model_id) & (runs["seed"] == seed)]["accuracy"].iloc[0])
            if abs(rows[-1].mean() - logged) > 1e-6:
                raise StageError(
                    f"{name}: its predictions give accuracy {rows[-1].mean():.6f} but its metrics.json "
                    f"says {logged}: the two files are from different runs; rerun `dvc repro train@{name}`"
                )
        correct[model_id] = np.stack(rows)
        mine = runs[runs["id"] == model_id]
        if len(params.seeds) == 1:
            intervals = stats.score_intervals(*labels[0], len(CLASSES))
            method = "Wilson (accuracy), paired bootstrap over test images (macro scores)"
        else:
            intervals = {score: stats.seed_interval(mine[score].tolist()) for score in SCORES}
            method = "t interval of the mean over seeds"
        models[model_id] = {
            score: {
                "mean": round(float(mine[score].mean()), 6),
                "low": round(intervals[score][0], 6),
                "high": round(intervals[score][1], 6),
            }
            for score in SCORES
        } | {"seeds": len(params.seeds), "interval": method}
    pairs = stats.compare_pairs(correct, list(params.models))
    for pair in pairs:
        for key in ("difference", "low", "high", "p", "p_holm"):
            pair[key] = float(f"{pair[key]:.6g}") if key.startswith("p") else round(pair[key], 6)
    return {
        "confidence": stats.CONFIDENCE,
        "test_images": len(truth) if truth is not None else 0,
        "models": models,
        "pairs": pairs,
    }


def _with_intervals(table: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    table = table.copy()
    for score in SCORES:
        position = table.columns.get_loc(score) + 1
        table.insert(position, f"{score}_high", [summary["models"][m][score]["high"] for m in table["id"]])
        table.insert(position, f"{score}_low", [summary["models"][m][score]["low"] for m in table["id"]])
    return table


def pairs_markdown(params: Params, summary: dict[str, Any]) -> str:
    """The pairwise comparisons as a table, with one verdict each."""
    names = {model_id: config.display_name for model_id, config in params.models.items()}
    rows = []
    for pair in summary["pairs"]:
        decided = stats.verdict(abs(pair["difference"]), pair["p_holm"])
        if decided.startswith("better"):  # name the model that is better
            decided = f"{names[pair['a'] if pair['difference'] > 0 else pair['b']]} {decided}"
        rows.append(
            {
                "models": f"{names[pair['a']]} − {names[pair['b']]}",
                "accuracy difference": f"{100 * pair['difference']:+.2f} pts",
                "95% interval": f"[{100 * pair['low']:+.2f}, {100 * pair['high']:+.2f}]",
                "test": pair["test"],
                "p": stats.format_p(pair["p"]),
                "p (Holm)": stats.format_p(pair["p_holm"]),
                "verdict": decided,
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def markdown_table(table: pd.DataFrame) -> str:
    """The study's table: display names, the four scores (mean ± standard deviation over
    seeds where there are several), parameters."""
    shown = table[["model", *SCORES, "param_count"]].rename(columns={"param_count": "parameters"})
    several = "seeds" in table and (table["seeds"] > 1).any()
    if several:
        for score in SCORES:
            shown[score] = [
                f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"
                for mean, std, seeds in zip(table[score], table[f"{score}_std"], table["seeds"], strict=True)
            ]
        shown.insert(1, "seeds", table["seeds"])
    if "accuracy_low" in table:
        position = list(shown.columns).index("accuracy") + 1
        shown.insert(
            position,
            "accuracy 95% interval",
            [
                f"[{low:.4f}, {high:.4f}]"
                for low, high in zip(table["accuracy_low"], table["accuracy_high"], strict=True)
            ],
        )
    return shown.to_markdown(index=False, floatfmt=".4f", intfmt=",")


def comparison_markdown(table: pd.DataFrame, pairs: str, summary: dict[str, Any]) -> str:
    seeds = int(table["seeds"].max())
    spread = (
        "mean ± standard deviation over seeds; the interval is the t interval of the mean over seeds"
        if seeds > 1
        else "one seed; the accuracy interval is Wilson's, over the test images"
    )
    return (
        "# Model comparison (test set)\n\n"
        f"Accuracy and macro-averaged precision, recall and F1 on the {summary['test_images']:,} test "
        f"images ({spread}). `statistics.json` holds every score's 95% interval.\n\n"
        f"{markdown_table(table)}\n\n"
        "## Model against model\n\n"
        "Every pair on the same test images; the p-values are Holm-corrected for the "
        f"{len(summary['pairs'])} comparisons, and a gap is called only where that p is below 0.05 "
        "(method: docs/statistics.md).\n\n"
        f"{pairs}\n\n"
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
    """Grouped bar chart: the four scores per model (means over seeds, where there are
    several), with their 95% intervals as error bars."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    labels = ["Accuracy", "Precision (macro)", "Recall (macro)", "F1 (macro)"]
    shown = table.set_index("model")[list(SCORES)]
    shown.columns = labels
    figure, axes = plt.subplots(figsize=(10, 5))
    # error bars: each score's 95% interval (asymmetric), shape (scores, 2, models)
    error = np.stack(
        [
            np.stack([table[score] - table[f"{score}_low"], table[f"{score}_high"] - table[score]])
            for score in SCORES
        ]
    )
    shown.plot.bar(ax=axes, rot=15, width=0.8, yerr=error, capsize=2, error_kw={"elinewidth": 0.8})
    axes.set_ylim(0, 1)
    axes.set_ylabel("score on the test set")
    axes.set_xlabel("")
    axes.set_title("CIFAR-10: test scores per model")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", ncols=4, fontsize="small")
    for container in axes.containers:
        if isinstance(container, BarContainer):  # not the error bars
            axes.bar_label(container, fmt="%.2f", fontsize=6, padding=1)
    _save_figure(figure, path)


def plot_learning_curves(curves: pd.DataFrame, model_id: str, display_name: str, path: Path) -> None:
    """Accuracy and loss per epoch, train vs validation, for one model (a line per seed)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    runs = curves[curves["id"] == model_id]
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for (prefix, label), color in zip(
            (("train", "train"), ("val", "validation")), ("C0", "C1"), strict=True
        ):
            for index, (seed, run) in enumerate(runs.groupby("seed", sort=False)):
                name = label if runs["seed"].nunique() == 1 else f"{label}, seed {seed}"
                style = "-o" if index == 0 else ("--o", ":o", "-.o")[(index - 1) % 3]
                ax.plot(run["epoch"], run[f"{prefix}_{metric}"], style, color=color, label=name)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(f"{display_name} ({model_id}): learning curves")
    _save_figure(figure, path)


def plot_validation_accuracy(params: Params, curves: pd.DataFrame, path: Path) -> None:
    """Every model's validation accuracy per epoch in one figure (a line per seed)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for index, (model_id, config) in enumerate(params.models.items()):
        runs = curves[curves["id"] == model_id]
        for number, (_, run) in enumerate(runs.groupby("seed", sort=False)):
            label = config.display_name if number == 0 else None
            axes.plot(run["epoch"], run["val_accuracy"], marker="o", color=f"C{index}", label=label)
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
    runs, timings = collect(params)
    table = comparison_table(params, runs)
    curves = learning_curves(params)
    scores = {
        row["id"]: json.dumps({key: row[key] for key in SCORES}, indent=2) + "\n"
        for row in table.to_dict("records")
    }
    predictions = {run_name(model_id, seed): _predictions(model_id, seed) for model_id, seed in _runs(params)}
    summary = statistics(params, runs, predictions)  # checks every run before anything is written
    table = _with_intervals(table, summary)
    _write_each(METRICS_DIR, ".json", scores)
    _write_each(PREDICTIONS_DIR, ".csv", predictions)
    write_text(CURVES, curves.to_csv(index=False))
    write_json(REPORTS / "timings.json", timings)
    write_json(STATISTICS, summary)
    write_text(REPORTS / "comparison.csv", table.to_csv(index=False, float_format="%.6f"))
    write_text(
        REPORTS / "comparison.md", comparison_markdown(table, pairs_markdown(params, summary), summary)
    )
    plot_metrics(table, FIGURES / "metrics_comparison.png")
    plot_validation_accuracy(params, curves, FIGURES / "val_accuracy.png")
    for model_id, config in params.models.items():
        path = FIGURES / "learning_curves" / f"{model_id}.png"
        plot_learning_curves(curves, model_id, config.display_name, path)
    _remove_stale(FIGURES / "learning_curves", ".png", list(params.models))
    log.info("%s", markdown_table(table))
    return table


def main() -> None:
    compare(load_params())


if __name__ == "__main__":
    run_stage(main)
