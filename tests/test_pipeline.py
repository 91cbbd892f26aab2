"""End to end: the real `dvc repro` and `dvc exp run` on a copy of the project and tiny data."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, tiny_params, write_params
from tests.test_models import STUDY_PARAMS

pytestmark = pytest.mark.slow
PROJECT_FILES = [
    "src",
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/plots",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
]


def _env() -> dict[str, str]:
    """The environment with this interpreter's `python` and `dvc` first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _run(repo: Path, *args: str) -> str:
    result = subprocess.run(args, cwd=repo, env=_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{output}"
    return output


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)':", output)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, project_params: dict, tiny_tarball: Path) -> Path:
    """The project copied into a fresh git repository, pointed at a tiny tarball."""
    repo = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    write_params(repo, tiny_params(project_params, tiny_tarball))
    _run(repo, "git", "init", "-q")
    _run(repo, "git", "config", "user.email", "ci@example.org")
    _run(repo, "git", "config", "user.name", "CI")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "project")
    return repo


def _scores(repo: Path, model_id: str) -> dict:
    return json.loads((repo / "reports" / "metrics" / f"{model_id}.json").read_text())


def _comparison(repo: Path) -> dict[str, dict[str, str]]:
    return {
        row["id"]: row for row in csv.DictReader(io.StringIO((repo / "reports/comparison.csv").read_text()))
    }


def test_repro_runs_every_stage_and_reports_all_models(repo: Path) -> None:
    output = _run(repo, "dvc", "repro")
    models = list(STUDY_PARAMS)
    assert _stages_run(output) == ["download", "prepare", *[f"train@{m}-42" for m in models], "compare"]
    comparison = _comparison(repo)
    assert list(comparison) == models
    for model_id, (total, trainable, frozen) in STUDY_PARAMS.items():
        row = comparison[model_id]
        counts = (row["param_count"], row["trainable_params"], row["non_trainable_params"])
        assert tuple(map(int, counts)) == (total, trainable, frozen) and row["epochs"] == "1"
        assert list(_scores(repo, model_id)) == ["accuracy", "precision", "recall", "f1"]
    for figure in [
        "metrics_comparison.png",
        "val_accuracy.png",
        *[f"learning_curves/{m}.png" for m in models],
    ]:
        assert (repo / "reports" / "figures" / figure).is_file()


def test_metrics_show_is_one_narrow_row_per_model(repo: Path) -> None:
    shown = _run(repo, "dvc", "metrics", "show").strip().splitlines()
    assert shown[0].split() == ["Path", "accuracy", "f1", "precision", "recall"]
    assert [line.split()[0] for line in shown[1:]] == [
        f"reports/metrics/{m}.json" for m in sorted(STUDY_PARAMS)
    ]
    assert max(len(line) for line in shown) <= 100  # a terminal's width, not 94 columns


def test_plots_color_the_curves_by_model(repo: Path) -> None:
    specs = json.loads(_run(repo, "dvc", "plots", "show", "--json", "--split"))["data"]
    curves = specs["Validation accuracy"][0]
    assert curves["type"] == "vega"
    encoding = curves["content"]["encoding"]
    assert encoding["color"]["field"] == "model" and encoding["x"]["field"] == "epoch"
    assert encoding["strokeDash"]["field"] == "rev" and encoding["detail"]["field"] == "seed"
    rows = curves["anchor_definitions"]["<DVC_METRIC_DATA>"]
    assert {row["model"] for row in rows} == {"MLP with BatchNorm", "MLP with L2", "Simple CNN",
                                              "CNN with DA and Dropout", "ResNet"}  # fmt: skip
    assert {row["epoch"] for row in rows} == {"1"}  # epochs count from 1
    confusion = [name for name in specs if name.startswith("reports/predictions/")]
    assert sorted(confusion) == [f"reports/predictions/{m}-42.csv" for m in sorted(STUDY_PARAMS)]


def test_editing_a_module_marks_exactly_the_stages_that_import_it(repo: Path) -> None:
    shards = repo / "src" / "speed" / "shards.py"
    original = shards.read_text()
    try:
        shards.write_text(original + "\n# an edit\n")
        status = _run(repo, "dvc", "status", "--json")
        changed = json.loads(status[status.index("{") :])
        assert sorted(changed) == sorted(f"train@{m}-42" for m in STUDY_PARAMS)
        for stage, changes in changed.items():
            assert changes == [{"changed deps": {"src/speed/shards.py": "modified"}}], stage
    finally:
        shards.write_text(original)
    assert "Data and pipelines are up to date." in _run(repo, "dvc", "status")


def test_second_repro_runs_nothing(repo: Path) -> None:
    output = _run(repo, "dvc", "repro")
    assert _stages_run(output) == []
    assert "Data and pipelines are up to date." in output


def test_experiment_reruns_only_the_changed_model_and_compare(repo: Path) -> None:
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "results")
    output = _run(repo, "dvc", "exp", "run", "-S", "models.simple_cnn.epochs=2")
    assert _stages_run(output) == ["train@simple_cnn-42", "compare"]
    for model_id in ("mlp_bn", "mlp_l2", "cnn_da_dropout", "resnet"):
        assert f"Stage 'train@{model_id}-42' didn't change, skipping" in output
    comparison = _comparison(repo)
    assert comparison["simple_cnn"]["epochs"] == "2" and comparison["resnet"]["epochs"] == "1"
    diff = json.loads(_run(repo, "dvc", "metrics", "diff", "--json"))
    assert list(diff) == ["reports/metrics/simple_cnn.json"]  # the other models did not change


def test_pr_report_shows_metric_param_and_figure_changes(repo: Path) -> None:
    output = _run(repo, sys.executable, "-m", "src.report", "--ref", "HEAD")
    report = (repo / "reports" / "pr_report.md").read_text()
    assert report.strip() in output
    verdicts = [line for line in report.splitlines() if line.startswith("| simple_cnn")]
    assert len(verdicts) == 1 and "McNemar (exact)" in verdicts[0]  # one verdict, for the changed model
    assert any(word in verdicts[0] for word in ("within noise (p = ", "better, p", "worse, p"))
    rows = [line for line in report.splitlines() if line.startswith("| reports")]
    assert rows and all(
        row.startswith("| reports/metrics/simple_cnn.json") for row in rows
    )  # the changed model
    assert not any("train_seconds" in row or "data.json" in row for row in rows)  # noise and facts stay out
    params = [line for line in report.splitlines() if line.startswith("| params.yaml")]
    assert len(params) == 1 and "models.simple_cnn.epochs" in params[0] and "| 2 " in params[0]
    assert "(figures/learning_curves/simple_cnn.png)" in report
    assert "(figures/metrics_comparison.png)" in report
    assert "learning_curves/resnet.png" not in report


def test_adding_a_seed_runs_only_the_new_stages(repo: Path, project_params: dict, tiny_tarball: Path) -> None:
    params = tiny_params(project_params, tiny_tarball)
    params["seeds"] = [42, 7]
    params["models"] = {m: params["models"][m] for m in ("mlp_l2", "simple_cnn")}
    write_params(repo, params)
    output = _run(repo, "dvc", "repro")
    assert _stages_run(output) == ["train@mlp_l2-7", "train@simple_cnn-7", "compare"]
    assert _comparison(repo)["mlp_l2"]["seeds"] == "2"
    assert (repo / "reports/predictions/simple_cnn-7.csv").is_file()
    _run(repo, "git", "checkout", "--", "params.yaml")
    # DVC leaves the outputs of stages that no longer exist; compare reads only the runs of
    # params.yaml, but its dependency on reports/train would count the stale ones
    for stale in [*(repo / "reports/train").glob("*-7"), *(repo / "models").glob("*-7.keras")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    assert _stages_run(_run(repo, "dvc", "repro")) == ["compare"]


def test_push_and_pull_through_the_default_remote(repo: Path, tmp_path: Path) -> None:
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "simple_cnn: 2 epochs")
    _run(repo, "dvc", "push")
    clone = repo.parent / "clone"
    _run(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    _run(clone, "dvc", "pull")
    assert (clone / "models" / "resnet-42.keras").is_file()
    assert "Data and pipelines are up to date." in _run(clone, "dvc", "repro")
    assert (clone / "data" / "prepared" / "train.npz").is_file()


def test_queued_sweep_runs_and_the_winner_is_kept(repo: Path) -> None:
    for rate in ("0.1", "0.4"):
        _run(repo, "dvc", "exp", "run", "--queue", "-S", f"models.mlp_l2.dropout={rate}")
    _run(repo, "dvc", "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while "Queued" in (status := _run(repo, "dvc", "queue", "status")) or "Running" in status:
        assert time.monotonic() < deadline, status
        time.sleep(3)
    assert status.count("Success") == 2, status

    table = _run(repo, "dvc", "exp", "show", "--csv")
    header, *rows = list(csv.reader(io.StringIO(table)))
    dropout = next(name for name in header if name.endswith("models.mlp_l2.dropout"))
    # the scores come first, one group of four per model
    assert header.index("reports/metrics/cnn_da_dropout.json:accuracy") < header.index(dropout)
    experiments = {row[header.index(dropout)]: row[0] for row in rows if row[0]}
    assert {"0.1", "0.4"} <= set(experiments)

    _run(repo, "dvc", "exp", "branch", experiments["0.4"], "dropout-0.4")
    assert "dropout: 0.4" in _run(repo, "git", "show", "dropout-0.4:params.yaml")
    _run(repo, "dvc", "exp", "apply", experiments["0.1"])
    assert "dropout: 0.1" in (repo / "params.yaml").read_text()
    assert _comparison(repo)["mlp_l2"]["epochs"] == "1"
    _run(repo, "git", "checkout", "--", ".")  # back to the committed state for the next tests
    _run(repo, "dvc", "checkout")


def test_unreachable_url_fails_fast_and_clearly(repo: Path, project_params: dict, tiny_tarball: Path) -> None:
    params = tiny_params(project_params, tiny_tarball)
    params["data"]["url"] = "http://127.0.0.1:9/cifar-10-binary.tar.gz"  # nothing listens on port 9
    write_params(repo, params)
    result = subprocess.run(
        ["dvc", "repro", "download"], cwd=repo, env=_env(), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "error: cannot connect" in result.stderr and "data.url" in result.stderr
    assert (repo / "reports" / "metrics" / "resnet.json").is_file()  # nothing of the previous run was lost


def test_interrupted_training_leaves_nothing_half_written(
    repo: Path, project_params: dict, tiny_tarball: Path
) -> None:
    params = tiny_params(project_params, tiny_tarball)
    params["models"]["simple_cnn"]["epochs"] = 200  # long enough to be interrupted midway
    write_params(repo, params)
    lock_before = (repo / "dvc.lock").read_text()
    process = subprocess.Popen(
        ["dvc", "repro", "train@simple_cnn-42"], cwd=repo, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:  # wait until training is under way
        if line.startswith("epoch 2/200"):
            break
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, to the whole process group
    process.communicate(timeout=60)
    assert process.returncode != 0

    assert (repo / "dvc.lock").read_text() == lock_before  # DVC recorded nothing
    leftovers = [p.name for p in (repo / "models").iterdir() if "simple_cnn" in p.name]
    assert leftovers == []  # no model file, and no temporary one
    status = _run(repo, "dvc", "status", "train@simple_cnn-42")
    assert "changed" in status

    write_params(repo, tiny_params(project_params, tiny_tarball))
    output = _run(repo, "dvc", "repro")
    assert (repo / "models" / "simple_cnn-42.keras").is_file()
    assert "train@simple_cnn-42" in output
    assert "Data and pipelines are up to date." in _run(repo, "dvc", "repro")
