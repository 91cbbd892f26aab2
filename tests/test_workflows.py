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


def test_workflows_pass_actionlint() -> None:
    actionlint = _actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed (its wheel exists for Linux x86-64 only)")
    result = subprocess.run([actionlint, "-color=false"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command_with_full_history() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    steps = ci["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def test_cml_posts_the_report_with_dvc3_syntax() -> None:
    text = (WORKFLOWS / "cml.yml").read_text()
    workflow = yaml.safe_load(text)
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["report"]["steps"])
    assert "make report" in runs and "cml comment create" in runs and "reports/pr_report.md" in runs
    assert "--show-md" not in text  # removed in DVC 3.0
    # restore unchanged stages' outputs from the remote instead of retraining every model
    assert "make repro REPRO_FLAGS=--pull" in runs and "pull --run-cache" not in runs
    assert "fetch-depth: 0" in text
