"""src/running/ci.py, the pull-request study's steps, outside the workflow (tests/test_study_workflow.py
runs them inside it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from src.ground.cli import StageError
from src.running import ci, ci_gate
from tests.conftest import ROOT


def test_without_a_shared_remote_the_plan_skips_with_one_notice(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    outputs = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(ci.remote, "describe_remote", lambda: ("local", "../../dvc-storage/cifar10", ""))
    ci.plan()
    assert outputs.read_text() == "enabled=false\nstages=[]\n"
    assert capsys.readouterr().out.startswith("::notice::no shared DVC remote")


def test_empty_secrets_skip_the_plan_with_one_notice(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Dependabot's pull requests run with empty secrets: one notice, not NoCredentialsError."""
    outputs = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")  # what `${{ secrets.X }}` gives when X is not passed
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")
    monkeypatch.setattr(ci.remote, "describe_remote", lambda: ("team", "s3://team/cifar10", ""))
    monkeypatch.setattr(ci.remote, "run", lambda args: pytest.fail(f"dvc {args} ran without credentials"))
    ci.plan()
    assert outputs.read_text() == "enabled=false\nstages=[]\n"
    out = capsys.readouterr().out
    assert out.startswith("::notice::the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are empty")


def test_a_fork_is_told_apart_from_a_branch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    for head, fork in (("someone/cifar10", True), ("team/cifar10", False)):
        pull = {"head": {"repo": {"full_name": head}}, "base": {"repo": {"full_name": "team/cifar10"}}}
        event.write_text(json.dumps({"pull_request": pull}))
        assert ci_gate.is_fork() is fork


def test_more_stages_than_a_matrix_holds_stop_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ci, "shared_remote", lambda: "s3://team/cifar10")
    monkeypatch.setattr(ci.remote, "run", lambda args: "")
    stages = " ".join(["prepare", *(f"train@m-{seed}" for seed in range(300))])
    monkeypatch.setattr(ci.dvc_command, "run", lambda *args, **kwargs: stages)
    with pytest.raises(StageError, match="300 training stages exceed GitHub's 256 jobs a matrix"):
        ci.plan()


def test_a_failed_report_step_still_writes_a_report_that_names_the_failure_and_the_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The comment job posts reports/pr_report.md: a report step that fails leaves one saying why."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/cifar10")
    monkeypatch.setattr(ci.workspaces, "read_entries", lambda paths: {"train@mlp_l2-42": {}})

    def refused(args: list[str]) -> str:
        raise StageError("the remote refused the credentials: check the secrets")

    monkeypatch.setattr(ci.workspaces, "merge", lambda handed: None)
    monkeypatch.setattr(ci.remote, "run", refused)
    with pytest.raises(StageError, match="refused the credentials"):
        ci.report(["train@mlp_l2-42"], tmp_path / "entries", "origin/main")
    text = (tmp_path / "reports" / "pr_report.md").read_text()
    assert "report step failed, so nothing was compared: the remote refused the credentials" in text
    assert "https://github.com/team/cifar10/actions/runs/42" in text


@pytest.mark.parametrize(
    ("config", "secrets", "go"),
    [
        ("[core]\n    remote = local\n['remote \"local\"']\n    url = ../../dvc-storage\n", "key", "false"),
        ("[core]\n    remote = team\n['remote \"team\"']\n    url = s3://team/cifar10\n", "", "false"),
        ("[core]\n    remote = team\n['remote \"team\"']\n    url = s3://team/cifar10\n", "key", "true"),
    ],
)
def test_the_gate_decides_from_the_config_files_before_anything_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: str, secrets: str, go: str
) -> None:
    """`python -m src.running.ci_gate` with a bare interpreter: the standard library only."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(config)
    outputs = tmp_path / "output"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
    }
    env |= {"AWS_ACCESS_KEY_ID": secrets, "AWS_SECRET_ACCESS_KEY": secrets}
    python = Path(sys.base_prefix) / "bin" / "python3"
    # -S: no site-packages, the standard library only, as setup-python's interpreter has
    result = subprocess.run([str(python), "-S", "-m", "src.running.ci_gate"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert outputs.read_text().startswith(f"go={go}\n")
    assert ("::notice::" in result.stdout) == (go == "false")


def test_the_gate_reads_the_local_config_over_the_committed_one(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = team\n['remote \"team\"']\n    url = /srv/dvc\n"
    )
    (tmp_path / ".dvc" / "config.local").write_text("['remote \"team\"']\n    url = s3://team/cifar10\n")
    assert ci_gate.configured_remote(tmp_path) == "s3://team/cifar10"
