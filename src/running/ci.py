"""The pull-request workflow's steps, runnable locally: `python -m src.running.ci plan | train
STAGE | report` (a leg per training stage, pushed with its run-cache; one job compares).
Details: docs/internals.md#ci.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from src.ground import dvc_command
from src.ground.cli import StageError, run_stage
from src.ground.files import write_text
from src.ground.paths import PR_REPORT
from src.running import remote, workspaces
from src.running.ci_gate import notice, output, skip_reason
from src.running.plan import training_stages

MATRIX_LIMIT = 256  # GitHub's most jobs in one matrix


def _summary(markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a") as out:
            out.write(markdown + "\n")


def use_endpoint() -> None:
    """Point the default remote at $DVC_S3_ENDPOINT (a non-AWS S3 server), where it is set."""
    endpoint = os.environ.get("DVC_S3_ENDPOINT")
    name = dvc_command.value("remote", "default")
    if endpoint and name:
        dvc_command.run("remote", "modify", "--local", name, "endpointurl", endpoint)


def shared_remote() -> str | None:
    """The default remote's URL where every runner can reach it (a scheme://); None otherwise."""
    _, url, _ = remote.describe_remote()
    return url if re.match(r"^[a-z0-9]+://", url or "") else None


def plan() -> None:
    """Skip with a notice where the fan-out cannot run; else prepare the data once and list the stages."""
    reason = skip_reason(shared_remote())
    if reason:
        notice(reason)
        return output(enabled="false", stages="[]")
    remote.run(["repro", "--pull", "prepare"])
    remote.run(["push", "--run-cache"])
    stages = training_stages()
    if not stages:
        raise StageError("dvc.yaml lists no train@ stage: check params.yaml's models and seeds")
    if len(stages) > MATRIX_LIMIT:
        raise StageError(
            f"{len(stages)} training stages exceed GitHub's {MATRIX_LIMIT} jobs a matrix: use fewer seeds"
        )
    output(enabled="true", stages=json.dumps(stages))


def train(stage: str, out: Path) -> None:
    """Restore the stage from the remote, or train it; push it; write its dvc.lock entry to `out`."""
    remote.run(["repro", "--pull", stage])
    remote.run(["push", "--run-cache", stage])
    entry = workspaces.lock_entry(stage, Path("."))
    workspaces.write_entries(out / f"{workspaces.folder_name(stage)}.yaml", {stage: entry})


def run_url() -> str | None:
    """This workflow run's page (its logs and artifacts), on a runner."""
    run = os.environ.get("GITHUB_RUN_ID")
    url = f"{os.environ.get('GITHUB_SERVER_URL', '')}/{os.environ.get('GITHUB_REPOSITORY', '')}"
    return f"{url}/actions/runs/{run}" if run else None


def report(stages: list[str], entries: Path, ref: str | None) -> None:
    """`_report`, and where it fails, a report that says so, which step and where the logs
    are, so the pull request gets a comment that explains instead of none."""
    try:
        _report(stages, entries, ref)
    except Exception as error:
        if not PR_REPORT.exists():
            logs = f" The logs: {run_url()}." if run_url() else ""
            first = (str(error).splitlines() or [type(error).__name__])[0]
            text = f"# Results\n\nThe study's report step failed, so nothing was compared: {first}{logs}\n"
            write_text(PR_REPORT, text)
            _summary(text)
        raise


def _report(stages: list[str], entries: Path, ref: str | None) -> None:
    """Merge the legs' entries, restore every stage, run compare (training nothing), and write the
    report; legs that handed on nothing are named first."""
    PR_REPORT.unlink(missing_ok=True)  # a report left from an earlier run is not this run's
    handed = workspaces.read_entries(sorted(entries.glob("*.yaml")) if entries.is_dir() else [])
    missing = [stage for stage in stages if stage not in handed]
    if missing:
        text = "# Results\n\nThese training legs failed or were cancelled, so nothing was compared:\n\n"
        text += "\n".join(f"- `{stage}`" for stage in missing) + "\n"
        text += f"\nEach leg's log: {run_url()}\n" if run_url() else ""
        write_text(PR_REPORT, text)
        _summary(text)
        raise StageError(f"{len(missing)} training leg(s) handed on nothing: {', '.join(missing)}")
    workspaces.merge(handed)
    remote.run(["pull", *stages])  # every leg's outputs: a missing one fails here, before any training
    output = remote.run(["repro", "--pull"])
    trained = [stage for stage in dvc_command.stages_run(output) if stage.startswith("train@")]
    if trained:
        raise StageError(f"{trained} trained in the report job: their legs did not push them")
    if ref:
        from src.evidence.report import build_report

        # figures: in the run's artifact, not on a third-party host
        artifact = f"the `study-report` artifact of [this run]({run_url()})" if run_url() else None
        text = build_report(ref, figures_at=artifact)
        if artifact:
            text += f"\nFigures and this report: {artifact}\n"
        write_text(PR_REPORT, text)
        _summary(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan")
    leg = commands.add_parser("train")
    leg.add_argument("stage")
    leg.add_argument("--out", type=Path, default=Path("lock-entries"))
    last = commands.add_parser("report")
    last.add_argument("--stages", required=True, help="the plan's JSON list of training stages")
    last.add_argument("--entries", type=Path, default=Path("lock-entries"))
    last.add_argument("--ref", help="the git ref to report against (the pull request's base)")
    args = parser.parse_args()
    use_endpoint()
    if args.command == "plan":
        plan()
    elif args.command == "train":
        train(args.stage, args.out)
    else:
        report(json.loads(args.stages), args.entries, args.ref)


if __name__ == "__main__":
    run_stage(main)
