"""The training stage on tiny prepared data: outputs, determinism and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.ground.cli import StageError
from src.ground.params import load_params
from src.ground.paths import live_dir, model_path, predictions_path, timing_path
from src.learning.model_file import load_model
from src.stages.train import train
from tests.conftest import ROOT, write_params

keras = pytest.importorskip("keras")


def _weights(model_id: str) -> list[np.ndarray]:
    return load_model(model_path(model_id, 42)).get_weights()


def test_train_writes_model_metrics_curves_and_environment(in_prepared_project: Path) -> None:
    metrics = train("simple_cnn", load_params())
    assert metrics["param_count"] == 167_562 and metrics["epochs"] == 1
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert sorted(p.name for p in Path("models").iterdir()) == ["simple_cnn-42.keras"]
    out = live_dir("simple_cnn", 42)
    logged = json.loads((out / "metrics.json").read_text())
    assert logged["test"] == metrics
    assert set(logged["train"]) == {"accuracy", "loss"} and set(logged["eval"]) == {"accuracy", "loss"}
    for split in ("train", "eval"):
        assert (out / "plots" / "metrics" / split / "accuracy.tsv").read_text().startswith("step\taccuracy")
    predictions = predictions_path("simple_cnn", 42).read_text().splitlines()
    assert predictions[0] == "actual,predicted" and len(predictions) == 1 + 60
    run = json.loads((out / "run.json").read_text())
    assert run["versions"]["keras"] == keras.__version__
    timing = json.loads(timing_path("simple_cnn", 42).read_text())
    assert timing["train_seconds"] > 0 and timing["device"] in ("CPU", "GPU")
    assert not {"train_seconds", "peak_rss_mib", "cpu", "platform"} & set(run)  # nothing that varies
    loaded = load_model(model_path("simple_cnn", 42))
    assert loaded.count_params() == 167_562
    assert (
        loaded.name == "simple_cnn" and "shards" not in type(loaded).__name__
    )  # saved without its batch shards
    assert run["cpu_shards"] == load_params().models["simple_cnn"].cpu_shards == 2
    # in this process TensorFlow started before the stage could size its pools (0: its default);
    # tests/test_reproducible.py checks the pools of the stage's own process
    assert (
        set(run["threads"]) == {"train_threads", "intra_op", "inter_op"}
        and run["threads"]["train_threads"] == 2
    )
    assert run["cpu_isa"]["cpu_isa"] == "avx2" and run["cpu_isa"]["onednn_max_cpu_isa"] == "AVX2"


@pytest.mark.parametrize(
    ("model_id", "jit_compile"),
    [("simple_cnn", False), ("cnn_da_dropout", False), pytest.param("mlp_bn", True, marks=pytest.mark.slow)],
)
def test_same_inputs_give_identical_metrics_and_weights(
    in_prepared_project: Path, params_dict: dict, model_id: str, jit_compile: bool
) -> None:
    params_dict["train"]["jit_compile"] = jit_compile
    write_params(in_prepared_project, params_dict)
    train(model_id, load_params())
    assert json.loads((live_dir(model_id, 42) / "run.json").read_text())["xla"] is jit_compile
    first_metrics = (live_dir(model_id, 42) / "metrics.json").read_bytes()
    first_weights = _weights(model_id)
    train(model_id, load_params())
    assert (live_dir(model_id, 42) / "metrics.json").read_bytes() == first_metrics
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
        [sys.executable, "-m", "src.stages.train", "nope"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown model id 'nope': params.yaml's models has "
        "['cnn_da_dropout', 'mlp_bn', 'mlp_l2', 'resnet', 'simple_cnn']"
    ]


def test_run_records_the_speed_settings(in_prepared_project: Path) -> None:
    train("mlp_l2", load_params())
    run = json.loads((live_dir("mlp_l2", 42) / "run.json").read_text())
    # conftest gives TensorFlow the oneDNN kernels, as params.yaml's train.onednn does for the stage
    assert run["onednn"] is True and run["fused_optimizer"] is True and run["xla"] is False
    assert run["cpu_shards"] == 1  # params.yaml leaves the MLPs unsplit
    assert 100 < json.loads(timing_path("mlp_l2", 42).read_text())["peak_rss_mib"] < 8192


def test_gpu_device_without_a_gpu_stops_with_one_line_and_writes_nothing(
    in_prepared_project: Path, params_dict: dict
) -> None:
    params_dict["train"]["device"] = "gpu"
    write_params(in_prepared_project, params_dict)
    result = subprocess.run(
        [sys.executable, "-m", "src.stages.train", "mlp_l2"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1
    # TensorFlow's own start-up lines come first; the stage's is the last, and the only error
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == result.stderr.strip().splitlines()[-1:]
    assert errors[0] == (
        "error: train.device is gpu but TensorFlow sees no GPU (this TensorFlow is the CPU-only build: "
        "run make setup-gpu), or set train.device: cpu"
    )
    assert not Path("models").exists() and not Path("reports").exists()


def test_cpu_device_hides_gpus_before_tensorflow_loads_and_is_recorded(in_prepared_project: Path) -> None:
    script = (
        "import os, sys\n"
        "from src.learning.training import select_device\n"
        "assert 'tensorflow' not in sys.modules\n"
        "assert select_device('cpu') == []\n"
        "print(os.environ['CUDA_VISIBLE_DEVICES'])\n"
        "import tensorflow as tf\n"
        "print(tf.config.list_physical_devices('GPU'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    assert result.stdout.split("\n")[:2] == ["-1", "[]"]
    train("mlp_l2", load_params())
    assert json.loads((live_dir("mlp_l2", 42) / "run.json").read_text())["device"] == "cpu"
