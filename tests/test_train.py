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
from src.paths import live_dir, model_path, predictions_path
from src.train import cpu_isa_record, predictions_csv, scores, train
from tests.conftest import ROOT, write_params

keras = pytest.importorskip("keras")


def _weights(model_id: str) -> list[np.ndarray]:
    return keras.saving.load_model(model_path(model_id, 42)).get_weights()


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
    assert run["train_seconds"] > 0
    assert run["environment"]["versions"]["keras"] == keras.__version__
    assert run["environment"]["device"] in ("CPU", "GPU")
    loaded = keras.saving.load_model(model_path("simple_cnn", 42))
    assert loaded.count_params() == 167_562
    assert (
        loaded.name == "simple_cnn" and "shards" not in type(loaded).__name__
    )  # saved without its batch shards
    assert run["cpu_shards"] == load_params().models["simple_cnn"].cpu_shards == 2
    # in this process TensorFlow started before the stage could size its pools (0: its default);
    # tests/test_reproducible.py checks the pools of the stage's own process
    assert set(run["threads"]) == {"intra_op", "inter_op"}
    assert run["cpu_isa"]["cpu_isa"] == "avx2" and run["cpu_isa"]["onednn_max_cpu_isa"] == "AVX2"


@pytest.mark.parametrize(
    ("model_id", "jit_compile"),
    [("simple_cnn", False), ("cnn_da_dropout", False), pytest.param("resnet", True, marks=pytest.mark.slow)],
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


def test_predictions_csv_names_the_classes_in_test_order() -> None:
    text = predictions_csv(np.array([0, 9, 3]), np.array([1, 9, 5]))
    assert text == "actual,predicted\nairplane,automobile\ntruck,truck\ncat,dog\n"


def test_cpu_isa_record_says_which_kernels_ran() -> None:
    from src.params import TrainParams

    avx512 = {"avx2", "fma", "avx512f", "sse4_2"}
    assert cpu_isa_record(TrainParams(), avx512)["kernels_isa"] == "AVX2"
    assert cpu_isa_record(TrainParams(), avx512)["cpu_flags"] == ["avx2", "avx512f", "fma"]
    assert cpu_isa_record(TrainParams(cpu_isa="native"), avx512)["kernels_isa"] == "native"
    assert cpu_isa_record(TrainParams(), {"avx", "sse4_2"})["kernels_isa"] == "below AVX2"


def test_scores_are_macro_averaged() -> None:
    y_true = np.array([0, 0, 0, 1])
    y_pred = np.array([0, 0, 1, 1])
    result = scores(y_true, y_pred)
    assert result["accuracy"] == 0.75
    # only classes 0 and 1 occur; the other eight count as 0 in the macro mean (zero_division=0)
    assert result["precision"] == pytest.approx((1.0 + 0.5) / 10, abs=1e-6)
    assert result["recall"] == pytest.approx((2 / 3 + 1.0) / 10, abs=1e-6)


def test_run_records_the_speed_settings(in_prepared_project: Path) -> None:
    train("mlp_l2", load_params())
    run = json.loads((live_dir("mlp_l2", 42) / "run.json").read_text())
    # conftest gives TensorFlow the oneDNN kernels, as params.yaml's train.onednn does for the stage
    assert run["onednn"] is True and run["fused_optimizer"] is True and run["xla"] is False
    assert run["cpu_shards"] == 1  # params.yaml leaves the MLPs unsplit
    assert 100 < run["peak_rss_mib"] < 8192


def test_fused_adam_follows_keras_adam() -> None:
    """The fused kernel applies Keras's Adam rule: same weights after a few steps, up to rounding."""
    from src.params import ModelParams, TrainParams
    from src.train import _fused_adam_step, _optimizer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 20)).astype("float32")
    y = rng.integers(0, 3, 64)
    config = ModelParams(
        builder="mlp_l2", display_name="MLP", epochs=1, batch_size=16, optimizer="adam", learning_rate=0.01
    )
    weights = []
    for fused in (True, False):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3)])
        optimizer = _optimizer(config, TrainParams(fused_optimizer=fused))
        assert (optimizer.update_step.__func__ is _fused_adam_step) is fused
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for fused_w, keras_w in zip(*weights, strict=True):
        np.testing.assert_allclose(fused_w, keras_w, rtol=1e-4, atol=1e-6)
        assert np.abs(fused_w).sum() > 0


@pytest.mark.parametrize("onednn", [True, False])
def test_train_onednn_picks_tensorflows_kernels(onednn: bool) -> None:
    """train.onednn reaches TensorFlow, which reads it once at import: set before that, in a fresh process."""
    code = (
        "from src.params import TrainParams\n"
        "from src.train import configure_tensorflow, onednn_enabled\n"
        f"configure_tensorflow(TrainParams(onednn={onednn}))\n"
        "import tensorflow\n"
        "print(onednn_enabled())\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "0" if onednn else "1"  # the param wins over the environment
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1] == str(onednn)


def test_ctrl_c_swallowed_during_a_step_still_stops_training() -> None:
    import contextlib
    import signal

    from src.train import _ctrl_c_recorded, _stop_on_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    with _ctrl_c_recorded() as received:
        callback = _stop_on_ctrl_c(received)
        callback.on_train_batch_end(0)  # nothing received: training goes on
        with contextlib.suppress(KeyboardInterrupt):  # what native code sometimes does with it
            signal.raise_signal(signal.SIGINT)  # Ctrl-C; the handler runs right away
        with pytest.raises(KeyboardInterrupt):
            callback.on_train_batch_end(1)
    assert signal.getsignal(signal.SIGINT) is before
