"""The study on a real one-machine SLURM cluster (munged, slurmctld, slurmd started here).

Skipped where SLURM is not installed, unless CIFAR_STUDY_REQUIRE_SLURM is set (as .ci/run sets
it after installing Debian's slurm-wlm and munge): there a missing SLURM fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from src.running import tiny_project
from src.running.tiny_project import run as _run
from tests import slurm_cluster

pytestmark = pytest.mark.slow
MODELS = ["mlp_l2"]  # one model keeps the tasks few; the requeue test trains cnn_da_dropout
SEEDS = [42, 1, 2]
REPORTS = [
    "reports/comparison.csv",
    "reports/statistics.json",
    "reports/curves.csv",
    "reports/metrics/mlp_l2.json",
    "reports/predictions/mlp_l2-1.csv",
]
STUDY = Path(".dvc/tmp/study/slurm")  # a folder per submission in it


def _latest(clone: Path) -> Path:
    """The newest submission's folder."""
    return max((clone / STUDY).glob("*/jobs.json"), key=lambda path: path.stat().st_mtime).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slurm_cluster.Cluster]:
    why = slurm_cluster.missing()
    if why:
        if os.environ.get(slurm_cluster.REQUIRE):
            pytest.fail(f"{slurm_cluster.REQUIRE} is set but {why}")
        pytest.skip(why)
    cluster = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        os.environ.pop("SLURM_CONF", None)
        cluster.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, tiny_tarball: Path) -> Path:
    """The project with two models and two seeds on tiny data, committed, and trained once
    by plain `dvc repro` for the bytes to compare with."""
    repo = tiny_project.create(tmp_path_factory.mktemp("study"), tiny_tarball, MODELS, SEEDS)
    baseline = repo.parent / "baseline"
    _run(repo.parent, "git", "clone", "-q", str(repo), str(baseline))
    _run(baseline, "dvc", "repro")
    return repo


def _study(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no .venv on PATH: src.ground.dvc_command finds DVC itself
    return subprocess.run([sys.executable, "-m", "src.running.study", "--scheduler", "slurm", *args],
                          cwd=clone, env=env, capture_output=True, text=True)  # fmt: skip


def _squeue(job: str, fields: str) -> list[list[str]]:
    command = ["squeue", "-h", "-r", "-t", "all", "-j", job, "-o", fields]
    return [
        line.split() for line in subprocess.run(command, capture_output=True, text=True).stdout.splitlines()
    ]


def _outcome_times(root: Path) -> dict[str, float]:
    """When each task wrote its outcome file (SLURM forgets finished jobs after MinJobAge)."""
    return {path.stem: path.stat().st_mtime for path in (root / "outcomes").glob("task-*.json")}


@pytest.fixture(scope="module")
def finished(
    cluster: slurm_cluster.Cluster, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess]:
    """A clone of the project whose whole study ran on the cluster: (clone, the watcher's result)."""
    clone = tmp_path_factory.mktemp("finished") / "clone"
    _run(clone.parent, "git", "clone", "-q", str(project), str(clone))
    return clone, _study(clone)


def test_tasks_train_side_by_side_and_compare_gives_dvc_repros_bytes(
    finished: tuple[Path, subprocess.CompletedProcess], project: Path
) -> None:
    clone, result = finished
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training array job" in result.stdout and "study on SLURM: done" in result.stdout
    root = _latest(clone)
    jobs = yaml.safe_load((root / "jobs.json").read_text())
    assert sorted(jobs["stages"]) == sorted(f"train@{m}-{s}" for m in MODELS for s in SEEDS)
    times = sorted(_outcome_times(root).values())
    assert len(times) == 3 and times[1] - times[0] < 8, times  # the first two ran side by side
    compare_log = (root / "logs/compare.log").read_text()
    assert compare_log.count("Running stage 'compare'") == 1 and "Running stage 'train@" not in compare_log
    for report in REPORTS:
        assert (clone / report).read_bytes() == (project.parent / "baseline" / report).read_bytes(), report


def test_a_cancelled_task_is_named_and_the_resubmission_trains_only_it(
    cluster, project: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    submitted = _study(
        clone, "--no-wait", "--sbatch-args=--time=10", "--seeds", "42", "1", "--array-limit", "2"
    )
    assert submitted.returncode == 0, submitted.stderr
    root = _latest(clone)
    jobs = yaml.safe_load((root / "jobs.json").read_text())
    shown = subprocess.run(["scontrol", "show", "job", jobs["array"]], capture_output=True, text=True).stdout
    assert "ArrayTaskThrottle=2" in shown  # --array=0-1%2
    again = _study(clone, "--no-wait")  # a second submission of the same stages: refused
    assert again.returncode != 0 and f"--watch {root}" in again.stderr, again.stderr
    assert len(list((clone / STUDY).glob("*/jobs.json"))) == 1  # nothing of the first was touched
    victim = f"{jobs['array']}_1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _squeue(victim, "%T") != [["RUNNING"]]:
        time.sleep(0.3)
    subprocess.run(["scancel", victim], check=True)
    waited = _study(clone, "--watch", str(root))  # the watcher of another shell, re-attached
    assert waited.returncode != 0
    stage = jobs["stages"][1]
    [line] = waited.stderr.strip().splitlines()[-1:]
    assert re.search(rf"{re.escape(stage)} \(task 1: (cancelled|lost), log \S+task-1\.log\)", line), line
    assert line.endswith("submits again only what is missing")
    assert (
        "make study SCHEDULER=slurm SBATCH_ARGS=--time=10 SEEDS='42 1' ARRAY_LIMIT=2" in line
    )  # every argument
    again = _study(clone)
    assert again.returncode == 0, again.stdout + again.stderr
    root = _latest(clone)
    resubmitted = yaml.safe_load((root / "jobs.json").read_text())["stages"]
    logs = {name: (root / "logs" / f"task-{index}.log").read_text() for index, name in enumerate(resubmitted)}
    trained = sorted(name for name, log in logs.items() if f"Running stage '{name}'" in log)
    restored = sorted(name for name, log in logs.items() if f"Stage '{name}' is cached - skipping run" in log)
    assert trained == [stage] and restored == sorted(set(resubmitted) - {stage})  # the rest: the run-cache


def test_gpu_requests_of_every_form_are_kept_from_compare() -> None:
    from src.running.slurm import without_gpus

    args = ["-p", "gpu", "--gres=gpu:1", "--gpus", "2", "-G", "1", "-G2", "--gpus-per-node=1",
            "--mem-per-gpu", "8G", "--time=60", "--cpus-per-gpu=4"]  # fmt: skip
    assert without_gpus(args) == ["-p", "gpu", "--time=60"]


def test_a_task_near_its_time_limit_is_requeued_and_resumes_to_the_same_bytes(
    cluster, tiny_tarball: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """SLURM's warning signal before a time limit (sent here at once, as `--signal=B:USR1@120`
    would two minutes before it): the task requeues itself, the requeued task resumes the run
    from its last completed epoch, and the reports are dvc repro's, byte for byte, though
    params.yaml was edited after submitting (compare runs on the submitted snapshot)."""
    repo = tiny_project.create(tmp_path / "study", tiny_tarball, ["cnn_da_dropout"], [42])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["cnn_da_dropout"].update(epochs=4, batch_size=4)  # long enough to interrupt
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(repo, "git", "commit", "-qam", "four epochs")
    baseline = tmp_path / "baseline"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(baseline))
    _run(baseline, "dvc", "repro")
    submitted = _study(repo, "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    root = _latest(repo)
    task = f"{yaml.safe_load((root / 'jobs.json').read_text())['array']}_0"
    # an edit after submitting is not the submitted study: compare runs on the snapshot
    params["models"]["cnn_da_dropout"]["epochs"] = 5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    backups = repo / ".dvc/tmp/train-backups/cnn_da_dropout-42"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(backups.glob("*/epoch-1")):
        time.sleep(0.2)
    subprocess.run(["scancel", "--batch", "--signal=USR1", task], check=True)
    watched = _study(repo, "--watch", str(root))
    assert watched.returncode == 0, watched.stdout + watched.stderr
    log = (root / "logs" / "task-0.log").read_text()
    assert "resuming after epoch" in log, log
    assert "Running stage 'train@" not in (root / "logs" / "compare.log").read_text()
    assert yaml.safe_load((repo / "params.yaml").read_text())["models"]["cnn_da_dropout"]["epochs"] == 5
    for report in (
        "reports/curves.csv",
        "reports/predictions/cnn_da_dropout-42.csv",
        "reports/statistics.json",
    ):
        assert (repo / report).read_bytes() == (baseline / report).read_bytes(), report


def test_a_finished_study_is_done_after_slurm_forgot_its_jobs(
    finished: tuple[Path, subprocess.CompletedProcess],
) -> None:
    """Last in this module, so minutes after the study ended: with MinJobAge 5 s slurmctld has
    purged its jobs (it purges once a minute), and the re-attached watcher learns from the
    outcome files that every task and compare completed."""
    clone, _ = finished
    root = _latest(clone)
    jobs = yaml.safe_load((root / "jobs.json").read_text())
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and (_squeue(jobs["array"], "%T") or _squeue(jobs["compare"], "%T")):
        time.sleep(1)
    assert _squeue(jobs["array"], "%T") == [] and _squeue(jobs["compare"], "%T") == []
    watched = _study(clone, "--watch", str(root))
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "0 pending, 0 running, 3 done of 3 training tasks; compare completed" in watched.stdout
    assert "study on SLURM: done" in watched.stdout
