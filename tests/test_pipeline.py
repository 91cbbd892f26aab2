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
from pathlib import Path

import pytest
import yaml

from src.running import tiny_project
from src.running.tiny_project import environment as _env
from src.running.tiny_project import run as _run
from tests.conftest import tiny_params, write_params
from tests.test_models import STUDY_PARAMS

pytestmark = pytest.mark.slow


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)':", output)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_tarball: Path) -> Path:
    """The project copied into a fresh git repository, pointed at a tiny tarball."""
    return tiny_project.create(tmp_path_factory.mktemp("project"), tiny_tarball)


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
    content = curves["content"]
    assert content["encoding"]["color"]["field"] == "model" and content["encoding"]["x"]["field"] == "epoch"
    band, line = content["layer"]  # per model and revision: the band over seeds, then the mean
    assert band["mark"]["type"] == "errorband" and band["mark"]["extent"] == "stdev"
    assert band["encoding"]["y"]["field"] == "val_accuracy" and band["encoding"]["detail"]["field"] == "rev"
    assert line["encoding"]["y"] == {**line["encoding"]["y"], "aggregate": "mean", "field": "val_accuracy"}
    assert line["encoding"]["strokeDash"]["field"] == "rev"
    rows = curves["anchor_definitions"]["<DVC_METRIC_DATA>"]
    assert {row["model"] for row in rows} == {"MLP with BatchNorm", "MLP with L2", "Simple CNN",
                                              "CNN with DA and Dropout", "ResNet"}  # fmt: skip
    assert {row["epoch"] for row in rows} == {"1"}  # epochs count from 1
    confusion = [name for name in specs if name.startswith("reports/predictions/")]
    assert sorted(confusion) == [f"reports/predictions/{m}-42.csv" for m in sorted(STUDY_PARAMS)]


def test_editing_a_module_marks_exactly_the_stages_that_import_it(repo: Path) -> None:
    shards = repo / "src" / "learning" / "speed" / "shards.py"
    original = shards.read_text()
    try:
        shards.write_text(original + "\n# an edit\n")
        status = _run(repo, "dvc", "status", "--json")
        changed = json.loads(status[status.index("{") :])
        assert sorted(changed) == sorted(f"train@{m}-42" for m in STUDY_PARAMS)
        for stage, changes in changed.items():
            assert changes == [{"changed deps": {"src/learning/speed/shards.py": "modified"}}], stage
    finally:
        shards.write_text(original)
    assert "Data and pipelines are up to date." in _run(repo, "dvc", "status")


def test_second_repro_runs_nothing(repo: Path) -> None:
    output = _run(repo, "dvc", "repro")
    assert _stages_run(output) == []
    assert "Data and pipelines are up to date." in output


def test_an_identical_rerun_leaves_dvc_lock_as_it_was(repo: Path) -> None:
    """Training again what was trained writes the same bytes (model file without a save date,
    run.json without timings), so dvc.lock keeps every entry and compare stays up to date;
    the new timings land beside, in git."""
    lock = (repo / "dvc.lock").read_text()
    timing = repo / "reports/timings/mlp_bn-42.json"
    timing.write_text("{}")
    output = _run(repo, "dvc", "repro", "--force", "--single-item", "train@mlp_bn-42", "train@resnet-42")
    assert sorted(_stages_run(output)) == ["train@mlp_bn-42", "train@resnet-42"]
    assert (repo / "dvc.lock").read_text() == lock
    assert "Data and pipelines are up to date." in _run(repo, "dvc", "status")
    assert json.loads(timing.read_text())["train_seconds"] > 0


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
    header = next(csv.reader(io.StringIO(_run(repo, "dvc", "exp", "show", "--csv"))))
    epochs = next(name for name in header if name.endswith("models.simple_cnn.epochs"))
    # the scores come first, one group of four per model
    assert header.index("reports/metrics/cnn_da_dropout.json:accuracy") < header.index(epochs)


def test_pr_report_shows_metric_param_and_figure_changes(repo: Path) -> None:
    output = _run(repo, sys.executable, "-m", "src.evidence.report", "--ref", "HEAD")
    report = (repo / "reports" / "pr_report.md").read_text()
    assert report.strip() in output
    verdicts = [line for line in report.splitlines() if line.startswith("| simple_cnn")]
    assert len(verdicts) == 1 and "one seed each" in verdicts[0]  # one row, for the changed model
    assert "no verdict: one seed per side cannot tell" in verdicts[0]  # McNemar alone decides nothing
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
    assert report.count("```mermaid\nxychart-beta\n") == 2  # scores and curves, drawn by GitHub
    # on a pull-request page relative images resolve to nothing: the figures are named with a link
    script = "from src.evidence.report import build_report; print(build_report('HEAD', figures_at='RUN'))"
    on_github = _run(repo, sys.executable, "-c", script)
    assert "`figures/metrics_comparison.png`" in on_github and ": in RUN" in on_github
    assert "](figures/" not in on_github


def _run_cache_key(repo: Path, stage_name: str) -> str:
    """The key under which DVC's run-cache files this stage's run (.dvc/cache/runs/<key[:2]>/<key>)."""
    script = (
        "import sys\n"
        "from dvc.repo import Repo\n"
        "from dvc.stage.cache import _get_stage_hash\n"
        "[stage] = Repo().stage.collect(sys.argv[1])\n"
        "for dep in stage.deps:\n"
        "    dep.save()\n"
        "print(_get_stage_hash(stage))\n"
    )
    return _run(repo, sys.executable, "-c", script, stage_name).strip().splitlines()[-1]


def test_gpu_and_cpu_runs_never_share_a_run_cache_entry(
    repo: Path, project_params: dict, tiny_tarball: Path
) -> None:
    _run(repo, "dvc", "repro", "train@mlp_l2-42")
    cpu_key = _run_cache_key(repo, "train@mlp_l2-42")
    assert (repo / ".dvc/cache/runs" / cpu_key[:2] / cpu_key).is_dir()  # the CPU run is filed
    params = tiny_params(project_params, tiny_tarball)
    params["train"]["device"] = "gpu"
    write_params(repo, params)
    try:
        gpu_key = _run_cache_key(repo, "train@mlp_l2-42")
        assert gpu_key != cpu_key  # two values, two entries
        # nothing is restored under the GPU run's name: the stage runs, and stops without a GPU
        result = subprocess.run(
            ["dvc", "repro", "train@mlp_l2-42"], cwd=repo, env=_env(), capture_output=True, text=True
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "Running stage 'train@mlp_l2-42'" in output
        assert "is cached" not in output
        assert "error: train.device is gpu but TensorFlow sees no GPU" in output
        assert not (repo / ".dvc/cache/runs" / gpu_key[:2] / gpu_key).exists()
    finally:
        _run(repo, "git", "checkout", "--", "params.yaml")
    # back on the CPU, the CPU run is restored from the run-cache, not retrained
    output = _run(repo, "dvc", "repro", "train@mlp_l2-42")
    assert _stages_run(output) == [] and "Running stage" not in output


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


def test_report_with_two_seeds_a_side_gives_a_seed_level_verdict(
    repo: Path, tmp_path: Path, project_params: dict, tiny_tarball: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    params = tiny_params(project_params, tiny_tarball)
    params["seeds"] = [42, 7]
    params["models"] = {m: params["models"][m] for m in ("mlp_l2", "simple_cnn")}
    write_params(copy, params)
    _run(copy, "dvc", "repro")
    _run(copy, "git", "add", "-A")
    _run(copy, "git", "commit", "-qm", "two seeds")
    params["models"]["simple_cnn"]["dense_units"] = 32
    write_params(copy, params)
    assert _stages_run(_run(copy, "dvc", "repro")) == ["train@simple_cnn-42", "train@simple_cnn-7", "compare"]
    _run(copy, sys.executable, "-m", "src.evidence.report", "--ref", "HEAD")
    report = (copy / "reports" / "pr_report.md").read_text()
    [row] = [line for line in report.splitlines() if line.startswith("| simple_cnn")]
    # the same model before and after: seeds 42 and 7 pair, and the test images count as noise
    test = re.search(r"two-level t on seeds and test images \(paired over 2 seeds; [0-9.]+ df\)", row)
    assert test and "| 2, 2 " in row
    assert re.search(
        r"within noise \(p = [0-9.]+; 2 seeds detect (changes above ±[0-9.]+ pts|no change of accuracy at all"
        r" at this level: add seeds)\)|better, p|worse, p",
        row,
    )
    statistics = json.loads((copy / "reports/statistics.json").read_text())
    across = statistics["pairs"][0]["test"]  # two architectures: their seeds share nothing
    assert across.startswith("two-level t on seeds and test images (seeds independent")


def _committed_clone(repo: Path, clone: Path, models: list[str]) -> Path:
    """A fresh clone of `repo` as committed, with the recorded run's dvc.lock but none of its
    data or models (as a clone of main is), reduced to `models` to keep the test short."""
    _run(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    _run(clone, "git", "config", "user.email", "ci@example.org")  # dvc exp commits its runs
    _run(clone, "git", "config", "user.name", "CI")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["models"] = {m: params["models"][m] for m in models}
    write_params(clone, params)
    return clone


def _use_s3(clone: Path, endpoint: str, url: str = "s3://team/cifar10") -> None:
    """The team remote as docs/scaling-out.md sets it up, here with a local endpoint."""
    _run(clone, "dvc", "remote", "add", "--local", "-d", "team", url)
    _run(clone, "dvc", "remote", "modify", "--local", "team", "endpointurl", endpoint)


def test_stages_trained_on_two_machines_are_compared_on_a_third(repo: Path, tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    """What .github/workflows/study.yml does, without GitHub: clones of one commit share one S3
    remote; two each train their share of the stages, push them with the run-cache and hand on
    their dvc.lock entries; the third merges the entries, `dvc repro --pull` trains nothing, and
    it reports the bytes of the clone that ran everything itself (`repo`)."""
    _run(repo, "dvc", "repro")  # everything, here, if the tests before have not
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "the study", "--allow-empty")
    shares = {"a": "mlp_l2", "b": "simple_cnn"}
    clones = {name: _committed_clone(repo, tmp_path / name, list(shares.values())) for name in "abc"}
    for clone in clones.values():
        _use_s3(clone, s3.endpoint)
    for name, model_id in shares.items():
        # the committed entry matches but names outputs no one pushed: the stage trains
        output = _run(
            clones[name],
            sys.executable,
            "-m",
            "src.running.remote",
            "repro",
            "--pull",
            f"train@{model_id}-42",
        )
        assert f"train@{model_id}-42" in _stages_run(output)
        _run(clones[name], sys.executable, "-m", "src.running.remote", "push", "--run-cache")
        _run(clones[name], sys.executable, "-m", "src.running.study", "--export-lock",
             str(tmp_path / f"{name}.yaml"), f"train@{model_id}-42")  # fmt: skip
    assert "Running stage 'download'" not in output  # b restored the data a had pushed

    c = clones["c"]
    _run(
        c,
        sys.executable,
        "-m",
        "src.running.study",
        "--merge-lock",
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
    )
    output = _run(c, sys.executable, "-m", "src.running.remote", "repro", "--pull")
    assert _stages_run(output) == ["compare"]  # prepare is restored, compare is cheap
    for model_id in shares.values():  # pulled as their handed-on dvc.lock entries name them
        assert f"Pulling data for stage: 'train@{model_id}-42'" in output
        metrics = f"reports/metrics/{model_id}.json"
        assert (c / metrics).read_bytes() == (repo / metrics).read_bytes(), model_id


def _remote_fails(clone: Path, *args: str, **env: str) -> str:
    """Run `python -m src.running.remote <args>`, expect it to fail, and return its one error line."""
    result = subprocess.run(
        [sys.executable, "-m", "src.running.remote", *args],
        cwd=clone,
        env={**_env(), **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == result.stderr.strip().splitlines()[-1:], result.stderr  # one line, the last
    print(errors[0])  # shown with pytest -s: the lines docs/scaling-out.md quotes
    return errors[0]


def test_remote_faults_give_one_line_and_a_retry_trains_nothing(repo: Path, tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    from tests.s3_server import DyingProxy

    _run(repo, "dvc", "repro")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "the study", "--allow-empty")
    a = _committed_clone(repo, tmp_path / "a", ["mlp_l2"])
    proxy = DyingProxy(s3.endpoint)
    _use_s3(a, proxy.endpoint)
    assert "train@mlp_l2-42" in _stages_run(_run(a, "dvc", "repro", "train@mlp_l2-42"))
    where = f"error: remote 'team' (s3://team/cifar10, endpoint {proxy.endpoint})"

    line = _remote_fails(a, "push", "--run-cache", AWS_SECRET_ACCESS_KEY="not-the-key")
    assert line.startswith(f"{where} refused the credentials (") and "set AWS_ACCESS_KEY_ID and" in line

    _run(a, "dvc", "remote", "modify", "--local", "team", "url", "s3://nosuchbucket/cifar10")
    line = _remote_fails(a, "push", "--run-cache")
    assert line.startswith("error: remote 'team' (s3://nosuchbucket/cifar10, endpoint ")
    assert "has no bucket 'nosuchbucket' (NoSuchBucket): create it (`aws s3 mb s3://nosuchbucket`" in line
    _run(a, "dvc", "remote", "modify", "--local", "team", "url", "s3://team/cifar10")

    proxy.uploads = proxy.puts + 3  # the server goes away after three more uploads
    line = _remote_fails(a, "push", "--run-cache")
    assert line.startswith(f"{where} could not be reached or dropped the connection (")
    assert "run the same command again: what was pushed is kept and skipped" in line
    assert proxy.dead and proxy.puts == proxy.uploads

    back = DyingProxy(s3.endpoint, port=proxy.port)  # the server is back, at the same address
    try:
        _retry_trains_nothing_and_a_fresh_clone_restores(repo, a, tmp_path, back)
    finally:
        back.stop()


def _retry_trains_nothing_and_a_fresh_clone_restores(repo: Path, a: Path, tmp_path: Path, back) -> None:  # type: ignore[no-untyped-def]
    output = _run(a, sys.executable, "-m", "src.running.remote", "repro", "--pull", "train@mlp_l2-42")
    assert "Running stage" not in output  # nothing trains again
    output = _run(a, sys.executable, "-m", "src.running.remote", "push", "--run-cache")
    assert re.search(r"\d+ files? pushed", output) and back.puts > 0  # the rest, not what was there
    # a fresh clone with a's dvc.lock entry restores the stage from S3 instead of training it
    b = _committed_clone(repo, tmp_path / "b", ["mlp_l2"])
    _use_s3(b, back.endpoint)
    lock = str(tmp_path / "a.yaml")
    _run(a, sys.executable, "-m", "src.running.study", "--export-lock", lock, "train@mlp_l2-42")
    _run(b, sys.executable, "-m", "src.running.study", "--merge-lock", lock)
    output = _run(b, sys.executable, "-m", "src.running.remote", "repro", "--pull", "train@mlp_l2-42")
    assert "Running stage 'train@mlp_l2-42'" not in output
    metrics = "reports/train/mlp_l2-42/metrics.json"
    assert (b / metrics).read_bytes() == (a / metrics).read_bytes()


def test_study_trains_side_by_side_in_a_fresh_clone_with_the_same_bytes(repo: Path, tmp_path: Path) -> None:
    """`make study JOBS=2` in a fresh clone of a commit with a recorded run (dvc.lock, no
    outputs), run with a PATH that does not hold the project's environment: the training stages
    run two at a time, each in its own worktree sharing the DVC cache, `dvc repro` then trains
    nothing, and the scores are those of `repo`, trained one at a time."""
    clone = _committed_clone(repo, tmp_path / "fresh", ["mlp_l2", "simple_cnn"])
    result = subprocess.run(
        [sys.executable, "-m", "src.running.study", "--jobs", "2"],
        cwd=clone,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training 2 runs, 2 at a time, 2 thread(s) each" in result.stdout
    assert "study: 0/2 runs done; running train@" in result.stdout
    for model_id in ("mlp_l2", "simple_cnn"):
        assert re.search(rf"train@{model_id}-42: done after [\d.]+ min, log \S+", result.stdout)
        metrics = f"reports/metrics/{model_id}.json"
        assert (clone / metrics).read_bytes() == (repo / metrics).read_bytes(), model_id
    assert "trained again" not in result.stderr and "Running stage 'train@" not in result.stdout
    run = json.loads((clone / "reports/train/mlp_l2-42/run.json").read_text())
    assert run["threads"]["train_threads"] == 2  # train.threads, whatever the number of jobs
    assert _run(clone, "git", "worktree", "list").count("\n") == 1  # the workspaces are gone


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
