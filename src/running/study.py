"""`make repro` / `make study`: the whole study as `dvc repro` computes it, its training runs
side by side in worktrees (`--jobs`), or on SLURM (`--scheduler slurm`).

    python -m src.running.study [--jobs N|auto] [--seeds 42 1 2] [--pull] [--scheduler slurm]
Details: docs/internals.md#study.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from src.ground import dvc_command
from src.ground.cli import StageError, run_stage
from src.ground.params import load_params
from src.running import workspaces
from src.running.plan import expected_seconds, longest_first, model_of, outdated_training_stages, set_seeds

MEMORY_PER_RUN = 2.5 * 2**30  # bytes: the largest peak of a run measured (ResNet beside another)


def default_jobs(threads: int) -> int:
    """Runs side by side that the cores (at `threads` each) and the memory allow; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = max(1, cores // threads)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        available = re.search(r"MemAvailable:\s+(\d+) kB", meminfo.read_text())
        if available:
            jobs = min(jobs, max(1, int(int(available.group(1)) * 1024 // MEMORY_PER_RUN)))
    return jobs


def progress_line(done: int, total: int, running: list[str], left: list[str], jobs: int) -> str:
    """One line for the study: runs done of total, those running, and the time left, estimated
    from the runs' last training times (reports/timings/)."""
    seconds = expected_seconds()
    known = [seconds[model_of(stage)] for stage in left if model_of(stage) in seconds]
    estimate = f"; about {sum(known) / jobs / 60:.0f} min left" if known and len(known) == len(left) else ""
    return f"study: {done}/{total} runs done; running {', '.join(running) or 'none'}{estimate}"


def _report_finished(stage: str, began: float, status: int, root: Path) -> list[str]:
    """Print one line for a run that ended; the run with its log when it failed."""
    minutes = (time.monotonic() - began) / 60
    log = workspaces.log_file(stage, root)
    outcome = "done" if status == 0 else f"FAILED (exit {status})"
    print(f"{stage}: {outcome} after {minutes:.1f} min, log {log}", flush=True)
    return [] if status == 0 else [f"{stage} (log: {log})"]


def train_side_by_side(
    stages: list[str], jobs: int, flags: tuple[str, ...] = (), root: Path = workspaces.STUDY_DIR
) -> dict[str, dict]:
    """Train each stage in its own workspace, `jobs` at a time; their dvc.lock entries. A run
    that fails is named with its log; the others finish, and nothing is compared."""
    commit = workspaces.snapshot()
    threads = load_params().train.threads
    print(f"training {len(stages)} runs, {jobs} at a time, {threads} thread(s) each", flush=True)
    entries, failed = {}, []
    started: dict[Future, tuple[str, float]] = {}
    queue = list(stages)

    def train(stage: str) -> int:
        status, entry = workspaces.train(stage, commit, root, workspaces.log_file(stage, root), flags)
        if entry is not None:
            entries[stage] = entry
        return status

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while queue or started:
            while queue and len(started) < jobs:
                stage = queue.pop(0)
                started[pool.submit(train, stage)] = (stage, time.monotonic())
            running = [stage for stage, _ in started.values()]
            print(
                progress_line(
                    len(stages) - len(queue) - len(running), len(stages), running, queue + running, jobs
                ),
                flush=True,
            )
            finished, _ = wait(list(started), return_when=FIRST_COMPLETED)
            for future in finished:
                failed += _report_finished(*started.pop(future), future.result(), root)
    if failed:
        raise StageError(
            f"{len(failed)} training run(s) failed, nothing was compared: {'; '.join(failed)}; "
            "run the same command again to train only what is missing"
        )
    return entries


def study(jobs: int, seeds: list[int] | None = None, pull: bool = False) -> None:
    """Run the whole study as `dvc repro` does, training up to `jobs` runs side by side."""
    if seeds is not None:
        set_seeds(seeds)
    load_params()  # a malformed params.yaml fails here, in one line, before any stage runs
    flags = ("--pull",) if pull else ()
    stages = outdated_training_stages() if jobs > 1 else []
    if (
        len(stages) < 2
    ):  # nothing to run side by side: plain `dvc repro` (with one job, DVC is not asked first)
        dvc_command.stream_checked("repro", *flags)
        return
    dvc_command.stream_checked("repro", *flags, "prepare")
    workspaces.merge(train_side_by_side(longest_first(stages), jobs, flags))
    output = dvc_command.stream_checked("repro")
    retrained = [stage for stage in dvc_command.stages_run(output) if stage in stages]
    if retrained:  # the cache did not hold them: the results are right, only slower
        print(f"warning: {', '.join(retrained)} trained again in the workspace", file=sys.stderr)


def export_lock_entries(stages: list[str], out: Path, lock_file: Path = workspaces.LOCK_FILE) -> None:
    """Write these stages' entries of dvc.lock to `out`: what a machine that trained (or
    restored) them hands on, with their outputs pushed to the shared remote."""
    entries = dvc_command.lock_entries(lock_file)
    missing = [stage for stage in stages if stage not in entries]
    if missing:
        raise StageError(
            f"dvc.lock has no entry for {missing}: run `dvc repro --pull {' '.join(missing)}` first"
        )
    workspaces.write_entries(out, {stage: entries[stage] for stage in stages})


def merge_lock_entries(parts: list[Path], lock_file: Path = workspaces.LOCK_FILE) -> list[str]:
    """Put the stage entries of `parts` (from `export_lock_entries`) into dvc.lock; returns the stages."""
    return workspaces.merge(workspaces.read_entries(parts), lock_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="auto", help="training runs side by side (default auto)")
    parser.add_argument("--seeds", type=int, nargs="+", help="set params.yaml's seeds first")
    parser.add_argument("--pull", action="store_true", help="restore from the DVC remote what it holds")
    parser.add_argument("--scheduler", choices=("local", "slurm"), default="local")
    parser.add_argument("--sbatch-args", default="", help="for SLURM: partition, account, time, --gres=gpu:1")
    parser.add_argument("--no-wait", action="store_true", help="for SLURM: submit, print the job ids, return")
    parser.add_argument("--array-limit", type=int, default=0, help="for SLURM: at most K tasks at once (%%K)")
    parser.add_argument("--watch", type=Path, metavar="DIR", help="for SLURM: watch a submitted study again")
    parser.add_argument(
        "--export-lock", type=Path, metavar="FILE", help="write STAGES' dvc.lock entries to FILE"
    )
    parser.add_argument(
        "--merge-lock", type=Path, nargs="+", metavar="FILE", help="merge such files into dvc.lock"
    )
    parser.add_argument("stages", nargs="*", metavar="STAGE", help="stages for --export-lock")
    args = parser.parse_args()
    if args.export_lock:
        export_lock_entries(args.stages, args.export_lock)
    elif args.merge_lock:
        print(f"dvc.lock: entries of {', '.join(merge_lock_entries(args.merge_lock))}")
    elif args.watch:
        from src.running import slurm

        slurm.attach(args.watch)
    elif args.scheduler == "slurm":
        from src.running import slurm

        slurm.study(args.sbatch_args, wait=not args.no_wait, seeds=args.seeds, limit=args.array_limit)
    else:
        if args.jobs != "auto" and not args.jobs.isdigit():
            raise StageError(f"--jobs {args.jobs}: give 1 or more, or auto")
        jobs = default_jobs(load_params().train.threads) if args.jobs == "auto" else int(args.jobs)
        if jobs < 1:
            raise StageError(f"--jobs {args.jobs}: give 1 or more, or auto")
        study(jobs, args.seeds, args.pull)


if __name__ == "__main__":
    run_stage(main)
