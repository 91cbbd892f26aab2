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


def _steps(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_study_fans_the_training_stages_out_and_compares_without_training() -> None:
    text = (WORKFLOWS / "study.yml").read_text()
    workflow = yaml.safe_load(text)
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    plan, train, report = (workflow["jobs"][name] for name in ("plan", "train", "report"))
    # one job per train@<id>-<seed> stage that dvc.yaml expands, listed by DVC itself
    assert "dvc stage list --name-only | grep '^train@'" in _steps(plan)
    assert "src.remote push --run-cache" in _steps(plan)  # the data, once
    assert train["needs"] == "plan" and train["strategy"]["fail-fast"] is False
    assert train["strategy"]["matrix"]["stage"] == "${{ fromJSON(needs.plan.outputs.stages) }}"
    assert 'src.remote repro --pull "$STAGE"' in _steps(train)
    assert 'src.remote push --run-cache "$STAGE"' in _steps(train)
    # every job installs the S3 plugin the remote needs, and can point it at a non-AWS endpoint
    for job in (plan, train, report):
        assert "make setup EXTRAS=s3" in _steps(job) and "endpointurl" in _steps(job)
    assert "dvc-s3==" in (ROOT / "pyproject.toml").read_text()
    assert any(line.startswith("dvc-s3==") for line in (ROOT / "requirements.lock").read_text().splitlines())
    assert "src.study --export-lock" in _steps(train) and "src.study --merge-lock" in _steps(report)
    # the last job restores instead of training (`dvc pull --run-cache` + `dvc repro` retrains),
    # fails if anything would train, and posts the comparison
    runs = _steps(report)
    assert report["needs"] == "train" and "src.remote repro --pull 2>&1 | tee repro.log" in runs
    assert "Running stage 'train@" in runs and "pipefail" in runs
    assert "make report" in runs and "cml comment create" in runs and "reports/pr_report.md" in runs
    assert (
        "pull --run-cache" not in text.replace("push --run-cache", "") and "--show-md" not in text
    )  # the latter: removed in DVC 3.0
    assert "fetch-depth: 0" in text
