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
MODELS = ["mlp_l2", "simple_cnn"]
SEEDS = [42, 1]
REPORTS = [
    "reports/comparison.csv",
    "reports/statistics.json",
    "reports/curves.csv",
    "reports/metrics/mlp_l2.json",
    "reports/metrics/simple_cnn.json",
    "reports/predictions/simple_cnn-1.csv",
]
STUDY = Path(".dvc/tmp/study/slurm")


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


def _times(job: str) -> dict[str, tuple[str, str]]:
    """Start and end time of each job (or array task) as the scheduler has them."""
    return {job: (start, end) for job, start, end in _squeue(job, "%i %S %e")}


def test_tasks_train_side_by_side_and_compare_gives_dvc_repros_bytes(
    cluster, project: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    result = _study(clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted: training array job" in result.stdout and "study on SLURM: done" in result.stdout
    jobs = yaml.safe_load((clone / STUDY / "jobs.json").read_text())
    assert sorted(jobs["stages"]) == sorted(f"train@{m}-{s}" for m in MODELS for s in SEEDS)
    times = sorted(_times(jobs["array"]).values())
    assert len(times) == 4 and times[1][0] < times[0][1], times  # the first two ran side by side
    compare_log = (clone / STUDY / "logs/compare.log").read_text()
    assert compare_log.count("Running stage 'compare'") == 1 and "Running stage 'train@" not in compare_log
    assert min(end for _, end in times) <= _times(jobs["compare"])[jobs["compare"]][0]  # after the tasks
    for report in REPORTS:
        assert (clone / report).read_bytes() == (project.parent / "baseline" / report).read_bytes(), report


def test_a_cancelled_task_is_named_and_the_resubmission_trains_only_it(
    cluster, project: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    submitted = _study(clone, "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    jobs = yaml.safe_load((clone / STUDY / "jobs.json").read_text())
    victim = f"{jobs['array']}_3"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _squeue(victim, "%T") != [["RUNNING"]]:
        time.sleep(0.3)
    subprocess.run(["scancel", victim], check=True)
    watch = f"import json; from src.running import slurm; slurm.watch(json.load(open('{STUDY}/jobs.json')))"
    waited = subprocess.run([sys.executable, "-c", watch], cwd=clone, capture_output=True, text=True)
    assert waited.returncode != 0
    stage = jobs["stages"][3]
    [line] = waited.stderr.strip().splitlines()[-1:]
    assert re.search(rf"{re.escape(stage)} \(task 3: cancelled, log \S+task-3\.log\)", line), line
    assert line.endswith("submits again only what is missing")
    again = _study(clone)
    assert again.returncode == 0, again.stdout + again.stderr
    resubmitted = yaml.safe_load((clone / STUDY / "jobs.json").read_text())["stages"]
    logs = {
        name: (clone / STUDY / "logs" / f"task-{index}.log").read_text()
        for index, name in enumerate(resubmitted)
    }
    trained = sorted(name for name, log in logs.items() if f"Running stage '{name}'" in log)
    restored = sorted(name for name, log in logs.items() if f"Stage '{name}' is cached - skipping run" in log)
    assert trained == [stage] and restored == sorted(set(resubmitted) - {stage})  # the rest: the run-cache
