"""The study on a SLURM cluster (`python -m src.running.study --scheduler slurm`): one array job
trains the out-of-date stages in worktrees sharing this clone's DVC cache, one job after it
compares.
Details: docs/internals.md#slurm.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

from src.ground import commands, dvc_command
from src.ground.cli import StageError, run_stage
from src.ground.files import write_text
from src.ground.params import load_params
from src.ground.paths import SLURM_JOBS
from src.running import slurm_states, workspaces
from src.running.plan import longest_first, outdated_training_stages, set_seeds
from src.running.slurm_states import ENDED, ROOT, record, slurm, states

# GPU requests, in every spelling sbatch takes: compare needs no GPU (name=value, or value next)
GPU_OPTIONS = ("--gres", "--gpus", "--gpus-per-node", "--gpus-per-task", "--gpus-per-socket",
               "--cpus-per-gpu", "--mem-per-gpu", "-G")  # fmt: skip
# Near a time limit SLURM signals the batch shell; it requeues the task, whose run then resumes
# from its last completed epoch (src/learning/resume.py) instead of starting over.
TIME_LIMIT = ("--signal=B:USR1@120", "--requeue")


def without_gpus(args: list[str]) -> list[str]:
    """sbatch arguments less every GPU request (--gres=gpu:1, --gpus 2, -G 1, -G1, ...)."""
    kept, skip_value = [], False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in GPU_OPTIONS:
            skip_value = "=" not in arg
            continue
        if arg.startswith("-G") and arg[2:]:  # -G2
            continue
        kept.append(arg)
    return kept


def _script(root: Path, name: str, command: str) -> Path:
    path = root / f"{name}.sh"
    write_text(path, f"#!/bin/bash\nset -uo pipefail\ncd {shlex.quote(str(Path.cwd()))}\n{command}\n")
    path.chmod(0o755)
    return path


def _task_script(root: Path, python: str) -> Path:
    """The array task: the training in the background so that the shell can take SLURM's
    warning signal, requeue itself, and leave the run's backup for the requeued task."""
    command = f"""requeue() {{
    echo "time limit near: requeueing; the run resumes from its last completed epoch"
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
}}
trap requeue USR1
{python} -m src.running.slurm task {shlex.quote(str(root))} "$SLURM_ARRAY_TASK_ID" &
child=$!
until wait "$child"; status=$?; [ "$status" -lt 129 ] || ! kill -0 "$child" 2>/dev/null; do :; done
exit "$status"
"""
    return _script(root, "task", command)


def running_studies(base: Path = ROOT) -> list[tuple[Path, dict]]:
    """Submissions whose compare has not ended (no outcome file, and SLURM still knows a job)."""
    found = []
    for jobs_file in sorted(base.glob(f"*/{SLURM_JOBS}")) if base.is_dir() else []:
        root, jobs = jobs_file.parent, json.loads(jobs_file.read_text())
        live = slurm_states.squeue_states(jobs, tries=1)
        if slurm_states.outcome(root, "compare") is None and any(
            state not in ENDED for state in live.values()
        ):
            found.append((root, jobs))
    return found


def _refuse_overlap(stages: list[str], base: Path) -> None:
    for root, jobs in running_studies(base):
        shared = sorted(set(stages) & set(jobs["stages"]))
        if shared:
            ids = " ".join(slurm_states.job_ids(jobs))
            raise StageError(
                f"{', '.join(shared)} are being trained by the study submitted in {root} (jobs {ids}): "
                f"watch it with `python -m src.running.study --watch {root}`, or `scancel {ids}` first"
            )


def _check_params() -> None:
    """params.yaml and the builders' arguments, checked here, before any job waits in the queue."""
    check = "from src.ground.params import load_params; from src.learning.models import BUILDERS; " \
            "load_params(builders=BUILDERS)"  # fmt: skip
    result = commands.run([sys.executable, "-c", check], check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise StageError(f"params.yaml: {lines[-1] if lines else 'does not load'}; nothing was submitted")


def submit(sbatch_args: str = "", base: Path = ROOT, seeds: list[int] | None = None, limit: int = 0) -> dict:
    """Check params, prepare the data here, then submit the training array (throttled to `limit`
    tasks at once where given) and the compare job into a new folder; their ids."""
    load_params()
    _check_params()
    dvc_command.stream_checked("repro", "prepare")
    stages = longest_first(outdated_training_stages())
    base = base.resolve()  # the jobs' paths, wherever SLURM starts them
    _refuse_overlap(stages, base)
    root = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    (root / "logs").mkdir(parents=True)
    python = shlex.quote(sys.executable)
    args = shlex.split(sbatch_args)
    jobs: dict = {"stages": stages, "commit": workspaces.snapshot(), "array": None, "compare": None,
                  "sbatch_args": sbatch_args, "seeds": seeds, "limit": limit}  # fmt: skip
    write_text(root / SLURM_JOBS, json.dumps(jobs))
    if stages:
        throttle = f"%{limit}" if limit else ""
        jobs["array"] = slurm(
            "sbatch", "--parsable", "--job-name=study-train", f"--array=0-{len(stages) - 1}{throttle}",
            f"--output={root / 'logs' / 'task-%a.log'}", *TIME_LIMIT, *args, str(_task_script(root, python)),
        ).split(";")[0]  # fmt: skip
    after = [f"--dependency=afterok:{jobs['array']}", "--kill-on-invalid-dep=yes"] if jobs["array"] else []
    finish = _script(root, "compare", f"exec {python} -m src.running.slurm finish {shlex.quote(str(root))}")
    log = f"--output={root / 'logs' / 'compare.log'}"
    try:
        jobs["compare"] = slurm(
            "sbatch", "--parsable", "--job-name=study-compare", *after, log, *without_gpus(args), str(finish)
        ).split(";")[0]
    except StageError:
        if jobs["array"]:  # no array left running with nothing to compare it
            commands.run(["scancel", jobs["array"]], check=False)
        raise
    write_text(root / SLURM_JOBS, json.dumps(jobs))
    print(f"submitted into {root}: training array job {jobs['array']} ({len(stages)} tasks), "
          f"compare job {jobs['compare']}")  # fmt: skip
    return jobs | {"root": str(root)}


def task(root: Path, index: int) -> int:
    """One array task: train its stage in its own workspace, hand back the dvc.lock entry and the
    timings, and record how it ended in a file (SLURM forgets finished jobs)."""
    jobs = json.loads((root / SLURM_JOBS).read_text())
    stage = jobs["stages"][index]
    status = 1
    try:
        status, entry = workspaces.train(stage, jobs["commit"], root)  # its output: SLURM's log
        if entry is not None:
            workspaces.write_entries(
                root / "entries" / f"{workspaces.folder_name(stage)}.yaml", {stage: entry}
            )
    finally:
        record(root, f"task-{index}", status, stage)
    return status


def finish(root: Path) -> None:
    """The compare job: `dvc repro` on the submitted snapshot with the tasks' dvc.lock entries
    (only compare runs), its results then merged into this workspace."""
    status = 1
    try:
        jobs = json.loads((root / SLURM_JOBS).read_text())
        entries = workspaces.read_entries(sorted((root / "entries").glob("*.yaml")))
        output = workspaces.compare(jobs["commit"], entries, root)
        trained = [stage for stage in dvc_command.stages_run(output) if stage.startswith("train@")]
        if trained:
            print(
                f"warning: {len(trained)} training stage(s) ran in the compare job: {trained}",
                file=sys.stderr,
            )
        status = 0
    finally:
        record(root, "compare", status)


def again_command(jobs: dict) -> str:
    """The command that submits again only what is missing, with every argument of this one."""
    parts = ["make study SCHEDULER=slurm"]
    if jobs.get("sbatch_args"):
        parts.append(f"SBATCH_ARGS={shlex.quote(jobs['sbatch_args'])}")
    if jobs.get("seeds"):
        parts.append(f"SEEDS={shlex.quote(' '.join(map(str, jobs['seeds'])))}")
    if jobs.get("limit"):
        parts.append(f"ARRAY_LIMIT={jobs['limit']}")
    return " ".join(parts)


def watch(jobs: dict, root: Path) -> None:
    """Show the tasks pending, running and done until the compare job ends; name what failed."""
    jobs = jobs | {"root": str(root)}
    total, shown = len(jobs["stages"]), ""
    while True:
        found = states(jobs, root)
        tasks = [found[str(index)] for index in range(total)]
        compare = found["compare"]
        line = (
            f"study on SLURM: {tasks.count('PENDING')} pending, {tasks.count('RUNNING')} running, "
            f"{tasks.count('COMPLETED')} done of {total} training tasks; compare {compare.lower()}"
        )
        if line != shown:
            print(line, flush=True)
            shown = line
        if compare in ENDED or (
            all(task in ENDED for task in tasks) and any(t != "COMPLETED" for t in tasks)
        ):
            break
        time.sleep(slurm_states.POLL_SECONDS)
    failed = [
        f"{stage} (task {index}: {tasks[index].lower()}, log {root / 'logs' / f'task-{index}.log'})"
        for index, stage in enumerate(jobs["stages"])
        if tasks[index] != "COMPLETED"
    ]
    if failed:
        if compare not in ENDED and jobs.get("compare"):
            commands.run(["scancel", jobs["compare"]], check=False)  # it would wait forever
        raise StageError(
            f"{'; '.join(failed)}: nothing was compared; "
            f"`{again_command(jobs)}` submits again only what is missing"
        )
    if compare != "COMPLETED":
        raise StageError(f"the compare job ended {compare.lower()}: see {root / 'logs' / 'compare.log'}")
    print(f"study on SLURM: done; compare's output: {root / 'logs' / 'compare.log'}")


def attach(root: Path) -> None:
    """Watch a submitted study again (after the watcher was stopped, or from another shell)."""
    jobs_file = root / SLURM_JOBS
    if not jobs_file.is_file():
        raise StageError(f"{root} holds no SLURM submission ({SLURM_JOBS}): pass a folder under {ROOT}")
    watch(json.loads(jobs_file.read_text()), root.resolve())


def study(sbatch_args: str = "", wait: bool = True, seeds: list[int] | None = None, limit: int = 0) -> None:
    if seeds is not None:
        set_seeds(seeds)
    jobs = submit(sbatch_args, seeds=seeds, limit=limit)
    if wait:
        watch(jobs, Path(jobs["root"]))


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
