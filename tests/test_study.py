"""`make study` (src/running/study.py): the order of the queue, the seeds it sets, the threads it gives.
The end-to-end run, side by side with the same bytes, is in tests/test_pipeline.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.ground.params import parse_params
from src.running import plan, study
from tests.conftest import ROOT


def test_the_longest_runs_are_queued_first(tmp_path: Path) -> None:
    timings = tmp_path / "timings"
    timings.mkdir()
    for run, seconds in {
        "mlp_l2-42": 89.0,
        "resnet-42": 658.0,
        "resnet-1": 700.0,
        "simple_cnn-42": 122.0,
    }.items():
        (timings / f"{run}.json").write_text(json.dumps({"train_seconds": seconds, "cpu": "x"}))
    stages = ["train@mlp_l2-7", "train@simple_cnn-7", "train@new_model-7", "train@resnet-7"]
    assert plan.longest_first(stages, timings) == [
        "train@new_model-7",  # never timed: it may be the longest
        "train@resnet-7",
        "train@simple_cnn-7",
        "train@mlp_l2-7",
    ]
    assert plan.longest_first(stages, tmp_path / "missing") == stages  # no timings: as listed


def test_set_seeds_edits_params_yaml_as_dvc_exp_run_does_and_keeps_its_comments(tmp_path: Path) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text((ROOT / "params.yaml").read_text())
    plan.set_seeds([42, 1, 2], params_file)
    text = params_file.read_text()
    assert yaml.safe_load(text)["seeds"] == [42, 1, 2]
    assert "# One training run per model and seed" in text and "# random horizontal flip" in text
    parse_params(yaml.safe_load(text))  # still valid


def test_jobs_below_one_are_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "src.running.study", "--jobs", "0"],
        cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: --jobs 0: give 1 or more, or auto"]


@pytest.mark.parametrize(("cores", "memory_gib", "jobs"), [(2, 20, 1), (16, 64, 8), (16, 10, 4), (1, 20, 1)])
def test_auto_fills_the_cores_at_two_threads_a_run_within_the_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cores: int, memory_gib: int, jobs: int
) -> None:
    monkeypatch.setattr(study.os, "sched_getaffinity", lambda pid: set(range(cores)))
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: 99999999 kB\nMemAvailable: {memory_gib * 2**20} kB\n")
    real = study.Path
    monkeypatch.setattr(study, "Path", lambda name: meminfo if name == "/proc/meminfo" else real(name))
    assert study.default_jobs(threads=2) == jobs


def test_the_progress_line_counts_runs_and_estimates_from_the_last_timings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports/timings").mkdir(parents=True)
    for run, seconds in {"resnet-42": 600.0, "mlp_l2-42": 120.0}.items():
        (tmp_path / f"reports/timings/{run}.json").write_text(json.dumps({"train_seconds": seconds}))
    left = ["train@resnet-1", "train@mlp_l2-1", "train@resnet-2"]
    line = study.progress_line(3, 6, ["train@resnet-1"], left, jobs=2)
    assert line == "study: 3/6 runs done; running train@resnet-1; about 11 min left"  # 1,320 s over 2
    assert study.progress_line(0, 1, [], ["train@new-1"], 1) == "study: 0/1 runs done; running none"


def test_lock_entries_handed_on_are_merged_into_dvc_lock(tmp_path: Path) -> None:
    """The fan-out's hand-over: a machine exports the dvc.lock entries of the stages it ran,
    another merges them into its own dvc.lock, keeping every other entry."""
    ran = tmp_path / "ran.lock"
    ran.write_text(
        yaml.safe_dump({"schema": "2.0", "stages": {"train@a-1": {"cmd": "new a"}, "prepare": {"cmd": "p"}}})
    )
    study.export_lock_entries(["train@a-1"], tmp_path / "hand" / "a.yaml", ran)
    assert yaml.safe_load((tmp_path / "hand" / "a.yaml").read_text()) == {
        "stages": {"train@a-1": {"cmd": "new a"}}
    }
    with pytest.raises(study.StageError, match=r"dvc.lock has no entry for \['train@b-1'\]"):
        study.export_lock_entries(["train@b-1"], tmp_path / "b.yaml", ran)

    mine = tmp_path / "dvc.lock"
    mine.write_text(
        yaml.safe_dump({"schema": "2.0", "stages": {"train@a-1": {"cmd": "old a"}, "compare": {"cmd": "c"}}})
    )
    assert study.merge_lock_entries([tmp_path / "hand" / "a.yaml"], mine) == ["train@a-1"]
    assert yaml.safe_load(mine.read_text()) == {
        "schema": "2.0",
        "stages": {"train@a-1": {"cmd": "new a"}, "compare": {"cmd": "c"}},
    }
