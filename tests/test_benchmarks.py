"""The benchmarks (python -m benchmarks ...) run end to end on a few images and end with their JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("tensorflow")


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_train_speed_prints_one_json_line_per_model_with_levers() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "speed",
            "--models",
            "simple_cnn",
            "--images",
            "96",
            "--rounds",
            "1",
            "--levers",
            "batches not split",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["model"] == "simple_cnn"
    assert line["baseline_images_per_s"] > 0 and line["pipeline_images_per_s"] > 0
    speedup = line["pipeline_images_per_s"] / line["baseline_images_per_s"]
    assert line["ratio"] == pytest.approx(speedup, rel=0.02)
    assert len(line["baseline_steady_epoch_s"]) == len(line["pipeline_steady_epoch_s"]) == 2  # 3 epochs
    assert set(line["levers_images_per_s"]) == {"batches not split"}  # params.yaml splits simple_cnn's
    assert "simple_cnn      baseline" in result.stdout


def test_a_bare_levers_flag_runs_every_lever_that_changes_something() -> None:
    from benchmarks import speed as train_speed
    from src.ground.params import ModelParams

    unsplit = ModelParams(builder="mlp_l2", display_name="MLP")
    split = ModelParams(builder="simple_cnn", display_name="CNN", cpu_shards=2)
    assert train_speed.chosen_levers(None, split) == []
    assert train_speed.chosen_levers([], split) == [
        lever for lever in train_speed.LEVERS if lever != "Keras BatchNormalization"
    ]  # simple_cnn has no BatchNorm
    assert "batches not split" not in train_speed.chosen_levers([], unsplit)
    batch_norm = ModelParams(builder="vgg_style", display_name="VGG", cpu_shards=2)
    assert "Keras BatchNormalization" in train_speed.chosen_levers([], batch_norm)
    assert train_speed.chosen_levers(["with XLA"], unsplit) == ["with XLA"]


def test_train_speed_takes_variants_in_turn_and_pools_their_steady_epochs(monkeypatch) -> None:
    from benchmarks import speed as train_speed

    order = []
    seconds = {"baseline": iter([[9, 2, 4], [7, 3, 1]]), "pipeline": iter([[5, 1, 1], [3, 2, 2]])}

    def fake_run(model_id: str, variant: str, images: int, epochs: int) -> dict:
        order.append(variant)
        return {"images": 100, "epoch_seconds": next(seconds[variant]), "peak_rss_mib": len(order)}

    monkeypatch.setattr(train_speed, "_run", fake_run)
    measured = train_speed._measure("mlp_l2", ["baseline", "pipeline"], 100, 3, rounds=2)
    assert order == ["baseline", "pipeline", "baseline", "pipeline"]
    assert measured["baseline"]["images_per_s"] == 100 / 2.5  # median of 2, 4, 3, 1
    assert measured["pipeline"]["images_per_s"] == 100 / 1.5  # median of 1, 1, 2, 2
    assert measured["baseline"]["first_epoch_s"] == 8  # median of the first epochs 9 and 7
    assert measured["pipeline"]["peak_rss_mib"] == 4  # the larger of the two runs
    assert measured["baseline"]["steady_epoch_s"] == [2, 4, 3, 1]
    assert "then   1.0-  4.0 s" in train_speed._epochs(measured["baseline"])


def test_train_speed_rejects_unknown_models() -> None:
    result = subprocess.run(  # flags without a benchmark's name are the speed benchmark's
        [sys.executable, "-m", "benchmarks", "--models", "vgg16"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown model ids ['vgg16']" in result.stderr


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_accuracy_scores_the_study_style_run_beside_the_train_stage(in_prepared_project) -> None:
    """Trains simple_cnn the study's way on the tiny prepared data and compares with the stage's scores."""
    from src.ground.params import load_params
    from src.stages import train

    train.train("simple_cnn", load_params())  # the train stage's own scores, one epoch
    out = in_prepared_project / "baseline.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "accuracy",
            "--models",
            "simple_cnn",
            "--project",
            str(in_prepared_project),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line == json.loads(out.read_text())
    assert line["model"] == "simple_cnn" and line["epochs"] == 1
    assert 0.0 <= line["accuracy"] <= 1.0 and 0.0 <= line["f1"] <= 1.0
    stage = json.loads((in_prepared_project / "reports/train/simple_cnn-42/metrics.json").read_text())["test"]
    assert line["pipeline_accuracy"] == stage["accuracy"]
    assert line["accuracy_delta_points"] == pytest.approx(
        100 * (stage["accuracy"] - line["accuracy"]), abs=0.01
    )
    assert "simple_cnn      seed 42    study-style accuracy" in result.stdout


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_accuracy_trains_the_pipelines_way_as_the_train_stage_does(in_prepared_project) -> None:
    """The pipeline run that --seeds adds for other seeds is the train stage's training: at the
    stage's seed it reproduces the stage's test scores exactly."""
    from src.ground.params import load_params
    from src.stages import train

    stage = train.train("mlp_l2", load_params())
    command = [sys.executable, "-m", "benchmarks", "accuracy", "--worker", "mlp_l2"]
    command += ["--way", "pipeline", "--seeds", "42", "--project", str(in_prepared_project)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["way"] == "pipeline" and line["seed"] == 42 and line["data_order"] == "pipeline"
    assert {key: line[key] for key in ("accuracy", "precision", "recall", "f1")} == {
        key: stage[key] for key in ("accuracy", "precision", "recall", "f1")
    }


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_accuracy_over_seeds_pairs_each_seed_with_a_pipeline_run(in_prepared_project) -> None:
    """--seeds trains both ways once per seed (no train stage has run here) and sums them up;
    --onednn switches the study's way to TensorFlow's oneDNN kernels."""
    command = [sys.executable, "-m", "benchmarks", "accuracy", "--models", "mlp_l2"]
    command += ["--seeds", "42", "7", "--onednn", "--project", str(in_prepared_project)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(text) for text in result.stdout.strip().splitlines()[-2:]]
    assert [(line["seed"], line["way"]) for line in lines] == [(42, "study-onednn"), (7, "study-onednn")]
    assert all(line["onednn"] for line in lines)
    for line in lines:
        assert line["accuracy_delta_points"] == pytest.approx(
            100 * (line["pipeline_accuracy"] - line["accuracy"]), abs=0.01
        )
    assert "mlp_l2          2 seeds, test accuracy in points: study-onednn way" in result.stdout
    runs = [text.split(", seed ")[0] for text in result.stderr.splitlines() if "'s way, seed" in text]
    assert runs == ["mlp_l2: training the study's way", "mlp_l2: training the pipeline's way"] * 2
    # another seed, other weights and order: each way's first-epoch loss differs between seeds
    losses = [text.split("  loss ")[1].split()[0] for text in result.stderr.splitlines() if "  loss " in text]
    assert len(losses) == 4 and losses[0] != losses[2] and losses[1] != losses[3]


def test_accuracy_needs_prepared_data(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "accuracy", "--project", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "data/prepared/train.npz not found: run `dvc repro prepare` first" in result.stderr


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_accuracy_in_pipeline_order_sees_the_train_stages_batches(in_prepared_project) -> None:
    """With --pipeline-order, the study's way draws the stage's weights, batch order and Dropout
    masks: only the arithmetic differs, so the first epoch's training loss agrees to rounding."""
    from src.ground.params import load_params
    from src.stages import train

    train.train("mlp_l2", load_params())
    stage_loss = json.loads((in_prepared_project / "reports/train/mlp_l2-42/metrics.json").read_text())[
        "train"
    ]["loss"]
    command = [sys.executable, "-m", "benchmarks", "accuracy", "--models", "mlp_l2"]
    command += ["--project", str(in_prepared_project), "--pipeline-order"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["data_order"] == "pipeline"
    # the same numbers up to rounding (kernels, Adam's float32 betas)
    assert line["train_loss"] == pytest.approx(stage_loss, rel=1e-5)


@pytest.mark.slow
@pytest.mark.bench  # the benchmark tools' own runs: make test-bench
def test_verdicts_benchmark_trains_seeds_and_splits_and_tallies_the_report_verdicts(
    tmp_path, tiny_tarball, params_dict
) -> None:
    from src.stages.download import TARGET
    from tests.conftest import write_params

    write_params(tmp_path, params_dict)
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_bytes(tiny_tarball.read_bytes())
    out = tmp_path / "runs.jsonl"
    command = [sys.executable, "-m", "benchmarks", "verdicts", "--models", "mlp_l2", "--seeds", "4"]
    command += [
        "--splits",
        "2",
        "--pool",
        "200",
        "--epochs",
        "2",
        "--draws",
        "40",
        "--project",
        str(tmp_path),
    ]
    result = subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["split_seed"]) for r in runs] == [
        (1, 42),
        (2, 42),
        (3, 42),
        (4, 42),
        (42, 1),
        (42, 2),
    ]
    assert all(r["train_images"] == 180 and set(r["accuracy"]) == {"1", "2"} for r in runs)
    result = json.loads(result.stdout.strip().splitlines()[-1])["mlp_l2"]
    assert result["seeds"] == 4 and result["split_runs"] == 2 and result["epochs"] == "1 -> 2"
    procedures = {row["procedure"]: row for row in result["procedures"]}
    assert "2 against 2 seeds, paired t (same seeds)" in procedures
    assert all(0 <= row["false_alarms"] <= 1 and 0 <= row["catches"] <= 1 for row in procedures.values())
    # analysing the saved runs again trains nothing and gives the same figures
    again = subprocess.run(
        [*command, "--from", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert json.loads(again.stdout.strip().splitlines()[-1])["mlp_l2"] == result


def test_scaling_projection_schedules_the_longest_runs_first() -> None:
    from benchmarks import scaling

    assert scaling.wall_time([3.0, 2.0, 2.0, 1.0], slots=2) == 4.0  # 3+1 beside 2+2
    assert scaling.wall_time([3.0, 2.0, 2.0, 1.0], slots=1) == 8.0
    runs = {"resnet-42": 600.0, "mlp_l2-42": 100.0, "mlp_l2-1": 100.0}
    one_at_a_time = scaling.project(runs, cores=2, threads=2, slowdown=1.35, overhead=0.0)
    assert one_at_a_time == 800.0 + scaling.COMPARE_SECONDS  # one slot: nothing runs beside, no slowdown
    two_at_a_time = scaling.project(runs, cores=4, threads=2, slowdown=1.0, overhead=0.0)
    assert two_at_a_time == 600.0 + scaling.COMPARE_SECONDS


def test_queue_benchmark_reads_dvc_queue_status_and_ignores_the_worker_line() -> None:
    from benchmarks import queue

    status = (
        "Task     Name        Created    Status\n"
        "7d0e4c4  exp-a1b2c   11:33 AM   Success\n"
        "1f2e3d4  exp-d3e4f   11:33 AM   Running\n"
        "9a8b7c6  exp-g5h6i   11:34 AM   Failed\n"
        "Worker status: 2 active, 0 idle\n"
    )
    assert queue.queue_states(status) == {
        "exp-a1b2c": "Success",
        "exp-d3e4f": "Running",
        "exp-g5h6i": "Failed",
    }


def test_queue_benchmark_calls_a_stall_when_no_run_finishes_for_the_stall_time(monkeypatch) -> None:
    from benchmarks import queue

    monkeypatch.setattr(queue, "POLL_SECONDS", 0.01)
    progress = iter([(0, 0), (1, 0), (2, 0), (2, 1)])
    assert queue.watch(lambda: next(progress), runs=3, stall_seconds=5) == (2, 1, False)
    stuck = iter([(0, 0), (1, 0), *[(2, 0)] * 1000])  # two ran, then nothing (treeverse/dvc#10398)
    assert queue.watch(lambda: next(stuck), runs=8, stall_seconds=0.2) == (2, 0, True)
