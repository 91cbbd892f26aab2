"""Stage `compare`: every model of params.yaml side by side, from each run's reports (models and
seeds as listed, never globbed): reports/metrics/, curves.csv, predictions/, statistics.json,
comparison.{csv,md} (verdicts, the ranking at every budget) and figures/.
Details: docs/internals.md#compare.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from src.evidence import budgets, figures, tables, verdicts
from src.evidence.tables import METRIC_KEYS, SCORES
from src.ground import predictions as run_predictions
from src.ground.cli import StageError, run_stage
from src.ground.data import CLASSES
from src.ground.files import write_json, write_text
from src.ground.params import Params, load_params
from src.ground.paths import (
    BUDGET_FIGURE,
    COMPARISON_CSV,
    COMPARISON_MD,
    CURVES,
    LEARNING_CURVES_DIR,
    METRICS_DIR,
    METRICS_FIGURE,
    PREDICTIONS_DIR,
    STATISTICS,
    VAL_ACCURACY_FIGURE,
    curve_path,
    epoch_predictions_path,
    live_metrics_path,
    predictions_path,
    run_name,
)

log = logging.getLogger(__name__)
Labels = tuple[np.ndarray, np.ndarray]  # one run's (true, predicted) test classes


def _missing(path: Path, model_id: str, seed: int) -> StageError:
    return StageError(f"{path} not found: run `dvc repro train@{run_name(model_id, seed)}` first")


def _read_json(path: Path, model_id: str, seed: int) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(path, model_id, seed)
    return json.loads(path.read_text())


def _read_curve(model_id: str, seed: int, split: str, metric: str) -> pd.Series:
    path = curve_path(model_id, seed, split, metric)
    if not path.is_file():
        raise _missing(path, model_id, seed)
    curve = pd.read_csv(path, sep="\t")
    return pd.Series(curve[metric].to_numpy(), index=curve["step"].to_numpy() + 1, name=metric)


def _runs(params: Params) -> list[tuple[str, int]]:
    """Every training run of params.yaml, model by model, each model's seeds in order."""
    return [(model_id, seed) for model_id in params.models for seed in params.seeds]


def learning_curves(params: Params) -> pd.DataFrame:
    """Accuracy and loss per epoch (from 1), train and validation, and test accuracy (reported,
    never used to choose), of every run, in params.yaml's order: a row per model, seed and epoch."""
    frames = []
    for model_id, seed in _runs(params):
        columns = {
            f"{prefix}_{metric}": _read_curve(model_id, seed, split, metric)
            for prefix, split in (("train", "train"), ("val", "eval"))
            for metric in ("accuracy", "loss")
        }
        columns["test_accuracy"] = _read_curve(model_id, seed, "test", "accuracy")  # reported only
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


def collect(params: Params) -> pd.DataFrame:
    """Test metrics of every run, one row per model and seed."""
    rows = []
    for model_id, seed in _runs(params):
        path = live_metrics_path(model_id, seed)
        test = _read_json(path, model_id, seed).get("test", {})
        missing = [key for key in METRIC_KEYS if key not in test]
        if missing:
            stage = f"train@{run_name(model_id, seed)}"
            raise StageError(f"{path} lacks {missing}: rerun `dvc repro {stage}`")
        rows.append({"id": model_id, "seed": seed, **{key: test[key] for key in METRIC_KEYS}})
    return pd.DataFrame(rows, columns=["id", "seed", *METRIC_KEYS])


def checked_answers(
    params: Params, runs: pd.DataFrame, predictions: dict[str, str]
) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per model and seed, the run's (true, predicted) test labels; stops where a run was tested
    on other images than the others, or where its predictions disagree with its metrics.json
    (files of two different runs)."""
    labels: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    truth: np.ndarray | None = None
    for model_id in params.models:
        labels[model_id] = {}
        for seed in params.seeds:
            name = run_name(model_id, seed)
            y_true, y_pred = run_predictions.parse(predictions[name], f"{predictions_path(model_id, seed)}")
            if truth is None:
                truth = y_true
            elif not np.array_equal(truth, y_true):
                raise StageError(f"{name} was tested on other images than the other runs: rerun it")
            right = y_true == y_pred
            logged = float(runs[(runs["id"] == model_id) & (runs["seed"] == seed)]["accuracy"].iloc[0])
            if abs(right.mean() - logged) > 1e-6:
                raise StageError(
                    f"{name}: its predictions give accuracy {right.mean():.6f} but its metrics.json "
                    f"says {logged}: the two files are from different runs; rerun `dvc repro train@{name}`"
                )
            labels[model_id][seed] = (y_true, y_pred)
    return labels


def correct_by_epoch(
    params: Params, labels: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]
) -> budgets.ByEpoch:
    """Per model and seed, which test images the model got right after each epoch."""
    correct: budgets.ByEpoch = {}
    for model_id, seed in _runs(params):
        path = epoch_predictions_path(model_id, seed)
        if not path.is_file():
            raise _missing(path, model_id, seed)
        truth = labels[model_id][seed][0]
        predicted = run_predictions.parse_epochs(path.read_text(), str(path), len(truth))
        correct.setdefault(model_id, {})[seed] = predicted == truth[None, :]
    return correct


def compare(params: Params) -> pd.DataFrame:
    """Write the comparison reports and figures; return the comparison table."""
    import matplotlib

    matplotlib.use("Agg")
    runs = collect(params)
    table = tables.comparison_table(params, runs)
    curves = learning_curves(params)
    scores = {
        row["id"]: json.dumps({key: row[key] for key in SCORES}, indent=2) + "\n"
        for row in table.to_dict("records")
    }
    predictions = {run_name(model_id, seed): _predictions(model_id, seed) for model_id, seed in _runs(params)}
    labels = checked_answers(params, runs, predictions)  # every run, before anything is written
    scores_by_seed = {m: runs[runs["id"] == m].set_index("seed")[list(SCORES)] for m in params.models}
    summary = verdicts.summary(labels, scores_by_seed, len(CLASSES))
    summary["budgets"] = budgets.rankings(correct_by_epoch(params, labels), params.compare.budgets)
    table = tables.with_intervals(table, summary)
    _write_each(METRICS_DIR, ".json", scores)
    _write_each(PREDICTIONS_DIR, ".csv", predictions)
    write_text(CURVES, curves.to_csv(index=False))
    write_json(STATISTICS, summary)
    write_text(COMPARISON_CSV, table.to_csv(index=False, float_format="%.6f"))
    pairs = tables.pairs_markdown(params, summary)
    names = {model_id: config.display_name for model_id, config in params.models.items()}
    by_budget = budgets.markdown(summary["budgets"], names)
    write_text(COMPARISON_MD, tables.comparison_markdown(table, pairs, summary, by_budget))
    figures.plot_metrics(table, runs, METRICS_FIGURE)
    figures.plot_validation_accuracy(params, curves, VAL_ACCURACY_FIGURE)
    shown = budgets.usable_budgets(correct_by_epoch(params, labels), params.compare.budgets)
    figures.plot_test_accuracy_by_epoch(params, curves, shown, BUDGET_FIGURE)
    for model_id, config in params.models.items():
        path = LEARNING_CURVES_DIR / f"{model_id}.png"
        figures.plot_learning_curves(curves, model_id, config.display_name, path)
    _remove_stale(LEARNING_CURVES_DIR, ".png", list(params.models))
    log.info("%s", tables.markdown_table(table))
    return table


def main() -> None:
    compare(load_params())


if __name__ == "__main__":
    run_stage(main)
