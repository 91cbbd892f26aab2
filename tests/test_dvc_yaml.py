"""dvc.yaml stays in step with params.yaml: every model's stage params and plots."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _plot_files() -> set[str]:
    files = set()
    for entry in DVC["plots"]:
        name, spec = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        if isinstance(spec, dict) and isinstance(spec.get("y"), dict):
            files.update(spec["y"])
        else:
            files.add(name)
    return files


def test_every_model_has_curves_and_a_confusion_matrix_in_plots() -> None:
    files = _plot_files()
    for model_id in PARAMS["models"]:
        base = f"reports/train/{model_id}/plots"
        expected = {
            f"{base}/metrics/{split}/{metric}.tsv"
            for split in ("train", "eval")
            for metric in ("accuracy", "loss")
        }
        expected.add(f"{base}/sklearn/confusion_matrix.json")
        missing = expected - files
        assert not missing, f"add {sorted(missing)} to plots: in dvc.yaml"


def test_training_stages_declare_only_their_own_model() -> None:
    train = DVC["stages"]["train"]
    assert train["foreach"] == "${models}"
    assert train["do"]["params"] == ["seed", "train", "models.${key}"]
    assert set(train["do"]["outs"]) == {"models/${key}.keras", "reports/train/${key}"}
    assert all(not isinstance(out, dict) for out in train["do"]["outs"])  # cached: keeps the run-cache


def test_compare_tracks_small_reports_in_git() -> None:
    compare = DVC["stages"]["compare"]
    metrics = {next(iter(m)): m[next(iter(m))] for m in compare["metrics"]}
    assert metrics["reports/metrics.json"] == {"cache": False}
    assert compare["params"] == ["models"]
