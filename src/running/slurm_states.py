"""What became of a SLURM submission's jobs: SLURM's own word (squeue) while it remembers them,
then the outcome file each job writes as it ends, then SLURM's accounting (sacct), else LOST.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from src.ground import commands
from src.ground.cli import StageError
from src.ground.files import write_text
from src.ground.paths import SLURM_JOBS, STUDY_DIR

ROOT = STUDY_DIR / "slurm"  # one folder per submission in it, named by its time
POLL_SECONDS = 5.0
SQUEUE_TRIES = 12  # a slurmctld restarting or busy: retried this many polls before giving up
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE", "LOST")  # fmt: skip


def slurm(*args: str) -> str:
    """The output of one of SLURM's commands; its absence named with the way out."""
    if shutil.which(args[0]) is None:
        raise StageError(
            f"SLURM's {args[0]} is not on PATH: run this on a SLURM login node, or use make study"
        )
    return commands.output(args)


def record(root: Path, name: str, status: int, stage: str | None = None) -> None:
    """How a task or the compare job ended, in a file of the submission's: SLURM forgets."""
    write_text(root / "outcomes" / f"{name}.json", json.dumps({"stage": stage, "status": status}))


def outcome(root: Path, name: str) -> int | None:
    path = root / "outcomes" / f"{name}.json"
    return int(json.loads(path.read_text())["status"]) if path.is_file() else None


def job_ids(jobs: dict) -> list[str]:
    """The submission's SLURM job ids: the training array's and the compare job's."""
    return [job for job in (jobs.get("array"), jobs.get("compare")) if job]


def squeue_states(jobs: dict, tries: int = SQUEUE_TRIES) -> dict[str, str]:
    """The states SLURM still has ("0": RUNNING, ..., "compare": ...); it forgets finished jobs
    after MinJobAge. An error (slurmctld restarting) is retried `tries` times, then one line."""
    ids = job_ids(jobs)
    for attempt in range(tries):
        try:
            listing = slurm("squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i %T")
            break
        except StageError as err:
            if attempt + 1 == tries:
                raise StageError(
                    f"squeue failed {tries} times in a row ({str(err).splitlines()[0]}); the jobs go on: "
                    f"re-attach with `python -m src.running.study --watch {jobs.get('root', ROOT)}`"
                ) from None
            time.sleep(POLL_SECONDS)
    return _keyed(jobs, [line.split() for line in listing.splitlines()])


def _keyed(jobs: dict, listing: list[list[str]]) -> dict[str, str]:
    """(job id, state) rows as {"0": state of task 0, ..., "compare": ...}."""
    found = {}
    for job, state, *_ in listing:  # sacct writes "CANCELLED by 1000"
        if job == jobs["compare"]:
            found["compare"] = state
        elif job.startswith(f"{jobs['array']}_") and job.split("_")[1].isdigit():
            found[job.split("_")[1]] = state
    return found


def _accounted(jobs: dict) -> dict[str, str]:
    """How ended jobs ended, from SLURM's accounting (sacct) where the cluster keeps it; {} where
    it does not (accounting storage disabled, sacct missing or failing)."""
    ids = job_ids(jobs)
    if not ids:
        return {}
    try:  # sacct not on PATH raises StageError too
        listing = commands.output(["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", "JobID,State"])
    except StageError:
        return {}
    return _keyed(jobs, [line.replace("|", " ").split() for line in listing.splitlines() if "|" in line])


def states(jobs: dict, root: Path) -> dict[str, str]:
    """Each task's and the compare job's state: SLURM's while it knows the job, else what the
    job's outcome file says, else what accounting says (sacct), else LOST (ended without a
    word: killed outright, a node lost)."""
    live, accounted = squeue_states(jobs), None
    found = {}
    for key, name in [*((str(i), f"task-{i}") for i in range(len(jobs["stages"]))), ("compare", "compare")]:
        ended_with = outcome(root, name)
        if key in live and (live[key] not in ENDED or ended_with is None):
            found[key] = live[key]
        elif ended_with is not None:
            found[key] = "COMPLETED" if ended_with == 0 else "FAILED"
        elif not _submitted_long_ago(root):
            found[key] = "PENDING"
        else:
            accounted = _accounted(jobs) if accounted is None else accounted
            found[key] = accounted[key] if accounted.get(key) in ENDED else "LOST"
    return found


def _submitted_long_ago(root: Path) -> bool:
    """Whether SLURM has had time to list the jobs (they are listed at once after sbatch)."""
    return time.time() - (root / SLURM_JOBS).stat().st_mtime > 2 * POLL_SECONDS
