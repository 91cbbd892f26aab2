""".github/workflows/study.yml run as a runner runs it (tests/actions_runner.py), against a real
S3 API on 127.0.0.1 (moto's server, as in the fan-out tests): plan, two train legs, report,
comment; the plan job's `make setup` builds its environment for real (uv, as setup-uv gives it);
a second run of the same commit trains nothing; a leg that fails is named in the report; a pull
request from a fork is skipped with a notice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from src.running import tiny_project
from src.running.tiny_project import run as _run
from tests.actions_runner import Runner
from tests.conftest import ROOT, pinned

pytestmark = pytest.mark.slow
STAGES = ["train@mlp_l2-42", "train@mlp_l2-1"]


@pytest.fixture()
def origin(tmp_path: Path, tiny_tarball: Path) -> Path:
    """The project on tiny data, one model and two seeds, with a team S3 remote committed."""
    extra = ("Makefile", "pyproject.toml", "requirements.lock", "scripts")
    repo = tiny_project.create(tmp_path / "origin", tiny_tarball, ["mlp_l2"], [42, 1], extra)
    _run(repo, "dvc", "remote", "add", "-d", "-f", "team", "s3://team/cifar10")
    _run(repo, "git", "commit", "-qam", "the team remote")
    return repo


def _runner(origin: Path, tmp_path: Path, s3, fork: bool = False) -> Runner:  # type: ignore[no-untyped-def]
    sha = _run(origin, "git", "rev-parse", "HEAD").strip()
    tmp_path.mkdir(parents=True, exist_ok=True)
    event = tmp_path / "event.json"
    head = "someone/cifar10" if fork else "team/cifar10"
    pull = {
        "number": 7,
        "head": {"repo": {"full_name": head}},
        "base": {"repo": {"full_name": "team/cifar10"}},
    }
    event.write_text(json.dumps({"pull_request": pull}))
    github = {
        "event_name": "pull_request",
        "base_ref": "main",
        "sha": sha,
        "repository": "team/cifar10",
        "token": "t",
        "event": {"pull_request": pull},
        "event_path": event,
        "run_id": 1,
    }
    runner = Runner(
        ROOT / ".github/workflows/study.yml", origin, tmp_path / "runner", Path(sys.executable).parent, github
    )
    if not fork:  # a fork's pull request gets no secrets
        runner.secrets = {
            "AWS_ACCESS_KEY_ID": s3.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
        }
    runner.vars = {"DVC_S3_ENDPOINT": s3.endpoint}
    return runner


def test_the_workflow_trains_reports_reruns_without_training_and_names_a_failed_leg(
    origin: Path, tmp_path: Path, s3
) -> None:  # type: ignore[no-untyped-def]
    runner = _runner(origin, tmp_path, s3)
    runner.real_setup = {"plan"}  # its `make setup` builds the environment, with setup-uv's uv
    first = runner.run_workflow()
    assert first["plan"].result == "success", first["plan"].log
    built = runner.work / "plan-1" / ".venv"
    assert (built / ".installed-s3").exists() and not (built / "lib").is_symlink()
    assert f"uv = {pinned('uv')}" in (built / "pyvenv.cfg").read_text() and (built / "bin/dvc").exists()
    assert (
        json.loads(first["plan"].outputs["stages"]) == STAGES and first["plan"].outputs["enabled"] == "true"
    )
    for leg, stage in zip(first["legs"], STAGES, strict=True):
        assert leg.result == "success", leg.log
        assert f"Running stage '{stage}'" in leg.log  # nothing on the remote yet: trained
    assert first["report"].result == "success", first["report"].log
    assert "Running stage 'train@" not in first["report"].log
    assert first["comment"].result == "success", first["comment"].log
    args = (runner.posted / "args").read_text().split()
    assert args[:2] == ["pr", "comment"] and "--edit-last" in args and "--create-if-none" in args
    body = (runner.posted / "body.md").read_text()
    assert body.startswith("# Results against `origin/main`") and "actions/runs/1" in body

    # "Re-run all jobs": the same commit, the first attempt's artifacts still there: nothing trains
    second = runner.run_workflow()
    assert all(leg.result == "success" and "Running stage 'train@" not in leg.log for leg in second["legs"])
    assert second["report"].result == "success", second["report"].log

    # a new run in which one leg's key is refused: the report names the leg, and is still posted
    third = _runner(origin, tmp_path / "third", s3)
    results = third.run_workflow(leg_env={1: {"AWS_SECRET_ACCESS_KEY": "wrong"}})
    assert [leg.result for leg in results["legs"]] == ["success", "failure"], results["legs"][0].log
    assert "refused the credentials" in results["legs"][1].log
    assert results["report"].result == "failure"
    assert "1 training leg(s) handed on nothing: train@mlp_l2-1" in results["report"].log
    assert results["comment"].result == "success"
    assert "`train@mlp_l2-1`" in (third.posted / "body.md").read_text()


def test_a_pull_request_from_a_fork_is_skipped_with_a_notice(origin: Path, tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    fork = _runner(origin, tmp_path, s3, fork=True)
    skipped = fork.run_workflow()
    assert skipped["plan"].result == "success" and skipped["plan"].outputs["enabled"] == "false"
    assert "::notice::pull request from a fork" in skipped["plan"].log
    assert [leg.result for leg in skipped["legs"]] == ["skipped"] and skipped["report"].result == "skipped"
    assert skipped["comment"].result == "skipped"
