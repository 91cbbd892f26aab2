"""The study on a SLURM cluster: one array job trains, one job after it compares.

    python -m src.running.study --scheduler slurm [--sbatch-args "-p gpu -A lab -t 2:00:00 --gres=gpu:1"]
    (make study SCHEDULER=slurm SBATCH_ARGS="...")

Run from a clone on the cluster's shared filesystem. Here (the login node) the data is
downloaded and prepared once; then every out-of-date training stage becomes one task of an
array job. Each task trains its stage in its own workspace (src/running/workspaces.py: a git worktree
of this state, sharing this clone's DVC cache, so nothing is copied and no task takes
another's DVC lock) and hands back its dvc.lock entry. A second job, `--dependency=afterok` on
the array, merges the entries here and runs `dvc repro`: every training stage is found in the
cache, only `compare` runs. While they run this command shows the tasks pending, running and
done; a task that fails or is cancelled is named with its log, and the same command submits
again only what is missing (what finished is in the run-cache). Several users sharing one
cache: DVC's shared-cache setup (docs/scaling-out.md).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from src.ground import commands, dvc_command
from src.ground.cli import StageError, run_stage
from src.ground.files import write_text
from src.ground.params import load_params
from src.ground.paths import SLURM_JOBS, STUDY_DIR
from src.running import workspaces
from src.running.plan import longest_first, outdated_training_stages, set_seeds

ROOT = STUDY_DIR / "slurm"
POLL_SECONDS = 5.0


def _slurm(*args: str) -> str:
    if shutil.which(args[0]) is None:
        raise StageError(
            f"SLURM's {args[0]} is not on PATH: run this on a SLURM login node, or use make study"
        )
    return commands.output(args)


def _script(root: Path, name: str, command: str) -> Path:
    path = root / f"{name}.sh"
    write_text(path, f"#!/bin/bash\nset -euo pipefail\ncd {shlex.quote(str(Path.cwd()))}\n{command}\n")
    path.chmod(0o755)
    return path


def submit(sbatch_args: str = "", root: Path = ROOT) -> dict:
    """Prepare the data here, then submit the training array and the compare job; their ids."""
    load_params()
    dvc_command.stream_checked("repro", "prepare")
    stages = longest_first(outdated_training_stages())
    root = root.resolve()  # the jobs' paths, wherever SLURM starts them
    shutil.rmtree(root, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
    python = shlex.quote(sys.executable)
    args = shlex.split(sbatch_args)
    jobs = {"stages": stages, "commit": workspaces.snapshot(), "array": None}
    write_text(root / SLURM_JOBS, json.dumps(jobs))
    if stages:
        run_task = f'exec {python} -m src.running.slurm task {shlex.quote(str(root))} "$SLURM_ARRAY_TASK_ID"'
        task = _script(root, "task", run_task)
        jobs["array"] = _slurm(
            "sbatch", "--parsable", "--job-name=study-train", f"--array=0-{len(stages) - 1}",
            f"--output={root / 'logs' / 'task-%a.log'}", *args, str(task),
        ).split(";")[0]  # fmt: skip
    compare_args = [arg for arg in args if not arg.startswith("--gres")]  # compare needs no GPU
    after = [f"--dependency=afterok:{jobs['array']}", "--kill-on-invalid-dep=yes"] if jobs["array"] else []
    finish = _script(root, "compare", f"exec {python} -m src.running.slurm finish {shlex.quote(str(root))}")
    log = f"--output={root / 'logs' / 'compare.log'}"
    jobs["compare"] = _slurm(
        "sbatch", "--parsable", "--job-name=study-compare", *after, log, *compare_args, str(finish)
    ).split(";")[0]
    write_text(root / SLURM_JOBS, json.dumps(jobs))
    print(
        f"submitted: training array job {jobs['array']} ({len(stages)} tasks), compare job {jobs['compare']}"
    )
    return jobs


def task(root: Path, index: int) -> int:
    """One array task: train its stage in its own workspace, hand back the dvc.lock entry."""
    jobs = json.loads((root / SLURM_JOBS).read_text())
    stage = jobs["stages"][index]
    status, entry = workspaces.train(stage, jobs["commit"], root)  # its output: SLURM's log
    if entry is not None:
        workspaces.write_entries(root / "entries" / f"{workspaces.folder_name(stage)}.yaml", {stage: entry})
    return status


def finish(root: Path) -> None:
    """The compare job: merge the tasks' dvc.lock entries here, then `dvc repro` (only compare runs)."""
    workspaces.merge(workspaces.read_entries(sorted((root / "entries").glob("*.yaml"))))
    output = dvc_command.stream_checked("repro")
    trained = [stage for stage in dvc_command.stages_run(output) if stage.startswith("train@")]
    if trained:
        print(f"warning: {len(trained)} training stage(s) ran in the compare job: {trained}", file=sys.stderr)


def states(jobs: dict) -> dict[str, str]:
    """Each task's and the compare job's state as SLURM has it ("0": RUNNING, ..., "compare": ...)."""
    ids = [job for job in (jobs["array"], jobs["compare"]) if job]
    listing = _slurm("squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i %T")
    found = {}
    for line in listing.splitlines():
        job, state = line.split()
        if job == jobs["compare"]:
            found["compare"] = state
        elif "_" in job and job.split("_")[1].isdigit():
            found[job.split("_")[1]] = state
    return found


def watch(jobs: dict, root: Path = ROOT) -> None:
    """Show the tasks pending, running and done until the compare job ends; name what failed."""
    total, shown = len(jobs["stages"]), ""
    while True:
        found = states(jobs)
        tasks = [found.get(str(index), "PENDING") for index in range(total)]
        compare = found.get("compare", "?").lower()
        line = (
            f"study on SLURM: {tasks.count('PENDING')} pending, {tasks.count('RUNNING')} running, "
            f"{tasks.count('COMPLETED')} done of {total} training tasks; compare {compare}"
        )
        if line != shown:
            print(line, flush=True)
            shown = line
        ended = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")
        if found.get("compare") in ended or (found.get("compare") is None and total == 0):
            break
        time.sleep(POLL_SECONDS)
    failed = [
        f"{stage} (task {index}: {tasks[index].lower()}, log {root.resolve() / 'logs' / f'task-{index}.log'})"
        for index, stage in enumerate(jobs["stages"])
        if tasks[index] != "COMPLETED"
    ]
    if failed:
        again = "`make study SCHEDULER=slurm` submits again only what is missing"
        raise StageError(f"{'; '.join(failed)}: nothing was compared; {again}")
    if found.get("compare") != "COMPLETED":
        log = root.resolve() / "logs" / "compare.log"
        raise StageError(f"the compare job ended {found.get('compare', 'unseen')}: see {log}")
    print(f"study on SLURM: done; compare's output: {root / 'logs' / 'compare.log'}")


def study(sbatch_args: str = "", wait: bool = True, seeds: list[int] | None = None) -> None:
    if seeds is not None:
        set_seeds(seeds)
    jobs = submit(sbatch_args)
    if wait:
        watch(jobs)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "task":
        sys.exit(task(Path(sys.argv[2]), int(sys.argv[3])))
    if len(sys.argv) == 3 and sys.argv[1] == "finish":
        finish(Path(sys.argv[2]))
        return
    raise StageError(
        "usage: python -m src.running.slurm task ROOT INDEX | finish ROOT "
        "(jobs of src.running.study --scheduler slurm)"
    )


if __name__ == "__main__":
    run_stage(main)
