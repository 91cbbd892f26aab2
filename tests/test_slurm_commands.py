"""src/running/slurm.py against SLURM's commands faked on PATH: what a real cluster does rarely
or slowly (slurmctld restarting, a bad param found before the queue), without a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from src.ground.cli import StageError
from src.running import slurm, slurm_states
from tests.conftest import ROOT


def _fake(bin_dir: Path, name: str, script: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.fixture()
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.setattr(slurm_states, "POLL_SECONDS", 0.0)
    return folder


def test_squeue_errors_are_retried_then_the_states_read(fake_bin: Path, tmp_path: Path) -> None:
    """slurmctld restarting: squeue fails twice, then answers; the watcher reads it."""
    count = tmp_path / "calls"
    _fake(
        fake_bin,
        "squeue",
        f"""echo x >> {count}
if [ "$(wc -l < {count})" -le 2 ]; then echo "slurm_load_jobs error: Socket timed out" >&2; exit 1; fi
printf '12_0 RUNNING\\n12_1 PENDING\\n13 PENDING\\n'""",
    )
    states = slurm_states.squeue_states({"array": "12", "compare": "13", "stages": ["a", "b"]}, tries=3)
    assert states == {"0": "RUNNING", "1": "PENDING", "compare": "PENDING"}
    assert count.read_text().count("x") == 3


def test_squeue_failing_every_time_gives_one_line_with_the_watch_command(fake_bin: Path) -> None:
    _fake(fake_bin, "squeue", 'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1')
    jobs = {"array": "12", "compare": "13", "stages": ["a"], "root": "/studies/20261205-1"}
    with pytest.raises(StageError) as error:
        slurm_states.squeue_states(jobs, tries=3)
    message = str(error.value)
    assert message.startswith("squeue failed 3 times in a row") and "the jobs go on" in message
    assert message.endswith("`python -m src.running.study --watch /studies/20261205-1`")


def test_a_bad_builder_argument_stops_the_submission_before_sbatch(
    in_prepared_project: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found on the login node in one line, not by a task after the queue's wait."""
    submitted = in_prepared_project / "sbatch-called"
    _fake(fake_bin, "sbatch", f"touch {submitted}; echo 1")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"]["simple_cnn"]["dense_unitz"] = 32  # a typo of dense_units
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    with pytest.raises(StageError, match=r"^params.yaml: .*dense_unitz.*; nothing was submitted$"):
        slurm.submit(base=in_prepared_project / "studies")
    assert not submitted.exists()


def _old_submission(tmp_path: Path, jobs: dict) -> Path:
    """A submission folder whose jobs.json is old enough that SLURM must have listed its jobs."""
    root = tmp_path / "study"
    (root / "outcomes").mkdir(parents=True)
    (root / "jobs.json").write_text(yaml.safe_dump(jobs))
    os.utime(root / "jobs.json", (0, 0))
    return root


def test_jobs_slurm_forgot_are_read_from_outcome_files_then_accounting(
    fake_bin: Path, tmp_path: Path
) -> None:
    """squeue lists nothing (MinJobAge passed): task 0 wrote its outcome; task 1 and compare did not,
    and sacct says task 1 was cancelled (its "by <uid>" dropped) and compare never started."""
    jobs = {"array": "12", "compare": "13", "stages": ["a", "b"]}
    root = _old_submission(tmp_path, jobs)
    (root / "outcomes" / "task-0.json").write_text('{"stage": "a", "status": 0}')
    _fake(fake_bin, "squeue", "exit 0")
    _fake(fake_bin, "sacct", "printf '12_0|COMPLETED\\n12_1|CANCELLED by 1000\\n13|CANCELLED by 1000\\n'")
    assert slurm_states.states(jobs, root) == {"0": "COMPLETED", "1": "CANCELLED", "compare": "CANCELLED"}


def test_without_accounting_a_job_that_left_no_word_is_lost(
    fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = {"array": "12", "compare": "13", "stages": ["a"]}
    root = _old_submission(tmp_path, jobs)
    _fake(fake_bin, "squeue", "exit 0")
    _fake(fake_bin, "sacct", 'echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1')
    assert slurm_states.states(jobs, root) == {"0": "LOST", "compare": "LOST"}
    fresh = {"array": "14", "compare": "15", "stages": ["a"]}
    monkeypatch.setattr(slurm_states, "POLL_SECONDS", 5.0)
    (root / "jobs.json").touch()  # just submitted: not listed yet is not lost
    assert slurm_states.states(fresh, root) == {"0": "PENDING", "compare": "PENDING"}
