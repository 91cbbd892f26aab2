"""The compare stage, on per-model reports written the way train@<id> writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from src.evidence.tables import REFERENCE
from src.ground import predictions
from src.ground.cli import StageError
from src.ground.params import load_params
from src.ground.paths import curve_path, epoch_predictions_path, live_dir, predictions_path
from src.stages.compare import compare
from tests.conftest import write_params

PARAM_COUNTS = {
    "mlp_bn": 1_710_346,
    "mlp_l2": 1_578_506,
    "simple_cnn": 167_562,
    "cnn_da_dropout": 315_722,
    "resnet": 437_674,
}


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _predictions(accuracy: float, images: int = 100) -> str:
    """A predictions file of `images` test images, the first accuracy * images of them right."""
    right = round(accuracy * images)
    rows = [
        f"{CLASSES[i % 10]},{CLASSES[i % 10] if i < right else CLASSES[(i + 1) % 10]}" for i in range(images)
    ]
    return "actual,predicted\n" + "\n".join(rows) + "\n"


def _fake_run(model_id: str, accuracy: float, epochs: int = 3, seed: int = 42) -> None:
    out = live_dir(model_id, seed)
    curves = [
        ("train", "accuracy"),
        ("train", "loss"),
        ("eval", "accuracy"),
        ("eval", "loss"),
        ("test", "accuracy"),
    ]
    for split, metric in curves:
        path = curve_path(model_id, seed, split, metric)
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
    predictions_path(model_id, seed).write_text(_predictions(accuracy))
    epochs_right = [_predictions(accuracy * (step + 1) / epochs) for step in range(epochs)]
    encoded = [predictions.encode_epoch(predictions.parse(text, "fake")[1]) for text in epochs_right]
    epoch_predictions_path(model_id, seed).write_text(predictions.epochs_to_tsv(encoded))
    (out / "run.json").write_text(json.dumps({"model_id": model_id, "seed": seed, "device": "cpu"}))


@pytest.fixture()
def reported(tmp_path: Path, params_dict: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, params_dict)
    for index, model_id in enumerate(params_dict["models"]):
        _fake_run(model_id, 0.3 + 0.1 * index)
    return tmp_path


def _scores(model_id: str) -> dict:
    return json.loads((Path("reports/metrics") / f"{model_id}.json").read_text())


def test_compare_writes_every_report(reported: Path) -> None:
    table = compare(load_params())
    models = ["mlp_bn", "mlp_l2", "simple_cnn", "cnn_da_dropout", "resnet"]
    assert sorted(p.stem for p in Path("reports/metrics").iterdir()) == sorted(models)
    assert _scores("simple_cnn") == {"accuracy": 0.5, "precision": 0.51, "recall": 0.5, "f1": 0.49}
    assert all(list(_scores(m)) == ["accuracy", "precision", "recall", "f1"] for m in models)
    assert not Path("reports/timings.json").exists()  # timings vary run to run: not compare's

    csv = pd.read_csv("reports/comparison.csv")
    assert csv["model"].tolist() == REFERENCE["model"].tolist() == table["model"].tolist()
    assert csv["param_count"].tolist() == list(PARAM_COUNTS.values())
    markdown = Path("reports/comparison.md").read_text()
    assert "| CNN with DA and Dropout |" in markdown and "Reference: the original study" in markdown
    assert "0.8137" in markdown  # the study's ResNet accuracy, for context

    curves = pd.read_csv("reports/curves.csv")
    assert list(curves.columns) == [
        "id", "model", "seed", "epoch", "train_accuracy", "train_loss", "val_accuracy", "val_loss",
        "test_accuracy",
    ]  # fmt: skip
    assert curves["id"].unique().tolist() == models and curves["epoch"].tolist() == [1, 2, 3] * 5
    resnet = curves[curves["id"] == "resnet"]
    assert resnet["model"].unique().tolist() == ["ResNet"]
    assert resnet["val_accuracy"].tolist() == pytest.approx([0.7 / 3, 1.4 / 3, 0.7])
    assert Path("reports/predictions/mlp_l2-42.csv").read_text() == _predictions(0.4)

    figures = Path("reports/figures")
    expected = ["metrics_comparison.png", "val_accuracy.png"] + [f"learning_curves/{m}.png" for m in models]
    for name in expected:
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    leftovers = [p for p in Path("reports").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_statistics_give_intervals_and_pairwise_verdicts(reported: Path) -> None:
    table = compare(load_params())
    summary = json.loads(Path("reports/statistics.json").read_text())
    assert summary["test_images"] == 100 and summary["confidence"] == 0.95
    resnet = summary["models"]["resnet"]["accuracy"]  # 70 of 100 right: Wilson [0.604, 0.781]
    assert (resnet["mean"], resnet["low"], resnet["high"]) == (
        0.7,
        pytest.approx(0.6042, abs=1e-4),
        pytest.approx(0.7810, abs=1e-4),
    )
    assert table.set_index("id").loc["resnet", "accuracy_low"] == resnet["low"]
    pairs = summary["pairs"]
    assert len(pairs) == 10 and (pairs[0]["a"], pairs[0]["b"]) == ("mlp_bn", "mlp_l2")
    worst_best = next(p for p in pairs if (p["a"], p["b"]) == ("mlp_bn", "resnet"))
    # 30 vs 70 right of the same 100 images: McNemar is sure, but one seed each gives no verdict
    assert worst_best["difference"] == pytest.approx(-0.4) and worst_best["test"] == "one seed each"
    assert worst_best["mcnemar_p"] < 0.001 and worst_best["p_holm"] is None and not worst_best["significant"]
    markdown = Path("reports/comparison.md").read_text()
    assert "## Model against model" in markdown and "McNemar p (test set only)" in markdown
    [row] = [line for line in markdown.splitlines() if "MLP with BatchNorm − MLP with L2 " in line]
    assert "-10.00 pts" in row and "no verdict: one seed per side cannot tell" in row
    assert "0.002 (seed 42 against seed 42)" in row


def test_predictions_that_disagree_with_the_metrics_are_refused(reported: Path) -> None:
    predictions_path("simple_cnn", 42).write_text(_predictions(0.9))  # metrics.json says 0.5
    with pytest.raises(StageError, match=r"simple_cnn-42: its predictions give accuracy 0.900000 but"):
        compare(load_params())
    assert not Path("reports/metrics").exists()  # checked before anything was written


def test_reports_are_byte_identical_on_rerun(reported: Path) -> None:
    compare(load_params())
    files = [
        "reports/metrics/resnet.json",
        "reports/curves.csv",
        "reports/comparison.csv",
        "reports/statistics.json",
    ]
    first = [Path(name).read_bytes() for name in files]
    compare(load_params())
    assert [Path(name).read_bytes() for name in files] == first


def test_only_models_in_params_are_compared(reported: Path, params_dict: dict) -> None:
    compare(load_params())
    del params_dict["models"]["mlp_l2"]  # its stale reports stay on disk and must be ignored
    write_params(reported, params_dict)
    compare(load_params())
    assert not Path("reports/metrics/mlp_l2.json").exists()
    assert not Path("reports/predictions/mlp_l2-42.csv").exists()
    assert "mlp_l2" not in pd.read_csv("reports/curves.csv")["id"].tolist()
    assert not Path("reports/figures/learning_curves/mlp_l2.png").exists()


def test_missing_model_reports_name_the_stage(reported: Path) -> None:
    (live_dir("resnet", 42) / "metrics.json").unlink()
    with pytest.raises(
        StageError, match=r"reports/train/resnet-42/metrics.json not found: run `dvc repro train@resnet-42`"
    ):
        compare(load_params())


def test_missing_predictions_name_the_stage(reported: Path) -> None:
    predictions_path("mlp_bn", 42).unlink()
    with pytest.raises(StageError, match=r"predictions.csv not found: run `dvc repro train@mlp_bn-42`"):
        compare(load_params())


def test_several_seeds_give_means_and_spreads(reported: Path, params_dict: dict) -> None:
    params_dict["seeds"] = [42, 7]
    write_params(reported, params_dict)
    for index, model_id in enumerate(params_dict["models"]):
        _fake_run(model_id, 0.4 + 0.1 * index, seed=7)  # seed 42 scored 0.3 + 0.1 * index
    table = compare(load_params())
    assert table["seeds"].tolist() == [2] * 5
    assert _scores("mlp_bn")["accuracy"] == pytest.approx(0.35)
    assert table.set_index("id").loc["mlp_bn", "accuracy_std"] == pytest.approx(0.070711, abs=1e-6)
    assert "0.3500 ± 0.0707" in Path("reports/comparison.md").read_text()
    assert sorted(p.name for p in Path("reports/predictions").glob("resnet-*")) == [
        "resnet-42.csv",
        "resnet-7.csv",
    ]
    curves = pd.read_csv("reports/curves.csv")
    assert sorted(curves["seed"].unique().tolist()) == [7, 42] and len(curves) == 5 * 2 * 3
    # model against model: the task-level test, its P(first > second) and what it could detect
    pairs = json.loads(Path("reports/statistics.json").read_text())["pairs"]
    assert all(
        pair["test"].startswith("two-level t on seeds and test images (seeds independent") for pair in pairs
    )
    bn_l2 = pairs[0]
    # 0.3, 0.4 against 0.4, 0.5: one tie (counts half) among four pairs. The same gap at both
    # seeds left the seed-only test nothing to judge; on 100 test images the task-level test
    # finds 10 pts within the images' own noise, and says what it would have found
    assert bn_l2["p_a_better"] == 0.125 and bn_l2["seed_pairs"] == 4
    assert bn_l2["p_these_images"] is None and bn_l2["test_set_se"] > 0.01
    assert bn_l2["verdict"].startswith("within noise (Holm-adjusted p = ") and bn_l2["detectable"] > 0.1
    assert "0.12 (4 pairs of runs)" in Path("reports/comparison.md").read_text()
