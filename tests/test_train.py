"""The training stage on tiny prepared data: outputs, determinism and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.cli import StageError
from src.params import load_params
from src.train import live_dir, model_path, scores, train
from tests.conftest import ROOT, write_params

keras = pytest.importorskip("keras")


def _weights(model_id: str) -> list[np.ndarray]:
    return keras.saving.load_model(model_path(model_id)).get_weights()


def test_train_writes_model_metrics_curves_and_environment(in_prepared_project: Path) -> None:
    metrics = train("simple_cnn", load_params())
    assert metrics["param_count"] == 167_562 and metrics["epochs"] == 1
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert sorted(p.name for p in Path("models").iterdir()) == ["simple_cnn.keras"]
    out = live_dir("simple_cnn")
    logged = json.loads((out / "metrics.json").read_text())
    assert logged["test"] == metrics
    assert set(logged["train"]) == {"accuracy", "loss"} and set(logged["eval"]) == {"accuracy", "loss"}
    for split in ("train", "eval"):
        assert (out / "plots" / "metrics" / split / "accuracy.tsv").read_text().startswith("step\taccuracy")
    confusion = json.loads((out / "plots" / "sklearn" / "confusion_matrix.json").read_text())
    assert len(confusion) == 60 and set(confusion[0]) == {"actual", "predicted"}
    run = json.loads((out / "run.json").read_text())
    assert run["train_seconds"] > 0
    assert run["environment"]["versions"]["keras"] == keras.__version__
    assert run["environment"]["device"] in ("CPU", "GPU")
    loaded = keras.saving.load_model(model_path("simple_cnn"))
    assert loaded.count_params() == 167_562


@pytest.mark.parametrize(
    ("model_id", "jit_compile"), [("simple_cnn", False), ("cnn_da_dropout", False), ("resnet", True)]
)
def test_same_inputs_give_identical_metrics_and_weights(
    in_prepared_project: Path, params_dict: dict, model_id: str, jit_compile: bool
) -> None:
    params_dict["train"]["jit_compile"] = jit_compile
    write_params(in_prepared_project, params_dict)
    train(model_id, load_params())
    assert json.loads((live_dir(model_id) / "run.json").read_text())["xla"] is jit_compile
    first_metrics = (live_dir(model_id) / "metrics.json").read_bytes()
    first_weights = _weights(model_id)
    train(model_id, load_params())
    assert (live_dir(model_id) / "metrics.json").read_bytes() == first_metrics
    for a, b in zip(first_weights, _weights(model_id), strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_model_id(in_prepared_project: Path) -> None:
    with pytest.raises(StageError, match=r"unknown model id 'vgg16'.*'cnn_da_dropout'"):
        train("vgg16", load_params())


def test_batch_larger_than_training_set(in_prepared_project: Path, params_dict: dict) -> None:
    params_dict["models"]["mlp_l2"]["batch_size"] = 5000
    write_params(in_prepared_project, params_dict)
    with pytest.raises(StageError, match=r"models.mlp_l2.batch_size=5000 is larger than the 250 training"):
        train("mlp_l2", load_params())
    assert not Path("models").exists()


def test_missing_prepared_data(in_prepared_project: Path) -> None:
    (in_prepared_project / "data" / "prepared" / "test.npz").unlink()
    with pytest.raises(StageError, match=r"data/prepared/test.npz not found: run `dvc repro prepare` first"):
        train("mlp_l2", load_params())
    assert not Path("models").exists()


def test_cli_reports_one_clear_line(in_prepared_project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "src.train", "nope"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown model id 'nope': params.yaml's models has "
        "['cnn_da_dropout', 'mlp_bn', 'mlp_l2', 'resnet', 'simple_cnn']"
    ]


def test_scores_are_macro_averaged() -> None:
    y_true = np.array([0, 0, 0, 1])
    y_pred = np.array([0, 0, 1, 1])
    result = scores(y_true, y_pred)
    assert result["accuracy"] == 0.75
    # only classes 0 and 1 occur; the other eight count as 0 in the macro mean (zero_division=0)
    assert result["precision"] == pytest.approx((1.0 + 0.5) / 10, abs=1e-6)
    assert result["recall"] == pytest.approx((2 / 3 + 1.0) / 10, abs=1e-6)
