"""The compare stage, on per-model reports written the way train@<id> writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.cli import StageError
from src.compare import REFERENCE, compare
from src.params import load_params
from src.train import live_dir
from tests.conftest import write_params

PARAM_COUNTS = {
    "mlp_bn": 1_710_346,
    "mlp_l2": 1_578_506,
    "simple_cnn": 167_562,
    "cnn_da_dropout": 315_722,
    "resnet": 437_674,
}


def _fake_run(model_id: str, accuracy: float, epochs: int = 3) -> None:
    out = live_dir(model_id)
    for split in ("train", "eval"):
        for metric in ("accuracy", "loss"):
            path = out / "plots" / "metrics" / split / f"{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = [
                f"{step}\t{accuracy * (step + 1) / epochs if metric == 'accuracy' else 2.0 / (step + 1)}"
                for step in range(epochs)
            ]
            path.write_text(f"step\t{metric}\n" + "\n".join(rows) + "\n")
    test = {
        "accuracy": accuracy,
        "precision": accuracy + 0.01,
        "recall": accuracy,
        "f1": accuracy - 0.01,
        "param_count": PARAM_COUNTS[model_id],
        "trainable_params": PARAM_COUNTS[model_id],
        "non_trainable_params": 0,
        "epochs": epochs,
    }
    (out / "metrics.json").write_text(json.dumps({"train": {}, "eval": {}, "step": epochs - 1, "test": test}))
    env = {"device": "CPU"}
    (out / "run.json").write_text(
        json.dumps({"train_seconds": 12.5, "train_images_per_second": 99.0, "environment": env})
    )


@pytest.fixture()
def reported(tmp_path: Path, params_dict: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, params_dict)
    for index, model_id in enumerate(params_dict["models"]):
        _fake_run(model_id, 0.3 + 0.1 * index)
    return tmp_path


def test_compare_writes_every_report(reported: Path) -> None:
    table = compare(load_params())
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert list(metrics) == ["mlp_bn", "mlp_l2", "simple_cnn", "cnn_da_dropout", "resnet"]
    assert metrics["simple_cnn"]["accuracy"] == pytest.approx(0.5)
    assert {m["param_count"] for m in metrics.values()} == set(PARAM_COUNTS.values())
    assert set(metrics["resnet"]) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "param_count",
        "trainable_params",
        "non_trainable_params",
        "epochs",
    }
    assert "train_seconds" not in json.dumps(metrics)  # timings vary: kept out of the metrics file
    assert json.loads(Path("reports/timings.json").read_text())["mlp_bn"]["train_seconds"] == 12.5

    csv = pd.read_csv("reports/comparison.csv")
    assert csv["model"].tolist() == REFERENCE["model"].tolist() == table["model"].tolist()
    markdown = Path("reports/comparison.md").read_text()
    assert "| CNN with DA and Dropout |" in markdown and "Reference: the original study" in markdown
    assert "0.8137" in markdown  # the study's ResNet accuracy, for context

    figures = Path("reports/figures")
    expected = ["metrics_comparison.png", "val_accuracy.png"] + [f"learning_curves/{m}.png" for m in metrics]
    for name in expected:
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    leftovers = [p for p in Path("reports").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_metrics_file_is_byte_identical_on_rerun(reported: Path) -> None:
    compare(load_params())
    first = Path("reports/metrics.json").read_bytes()
    compare(load_params())
    assert Path("reports/metrics.json").read_bytes() == first


def test_only_models_in_params_are_compared(reported: Path, params_dict: dict) -> None:
    del params_dict["models"]["mlp_l2"]  # its stale reports stay on disk and must be ignored
    write_params(reported, params_dict)
    compare(load_params())
    assert "mlp_l2" not in json.loads(Path("reports/metrics.json").read_text())
    assert not Path("reports/figures/learning_curves/mlp_l2.png").exists()


def test_missing_model_reports_name_the_stage(reported: Path) -> None:
    (live_dir("resnet") / "metrics.json").unlink()
    with pytest.raises(
        StageError, match=r"reports/train/resnet/metrics.json not found: run `dvc repro train@resnet`"
    ):
        compare(load_params())
