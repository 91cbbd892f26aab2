"""Does every run finish? DVC's experiment queue against the study's worktrees, many small runs.

    python -m benchmarks queue [--repeats 5] [--models mlp_l2 simple_cnn] [--seeds 42 1 2 3]
                               [--jobs 2] [--stall-minutes 5] [--ways queue worktrees]
    (or: make bench ARGS="queue")

Each repetition builds a fresh copy of the project on tiny data (src/running/tiny_project.py: 300
training images, one epoch, a run trains in a second or two), prepares it with `dvc repro
prepare`, then trains every train@<model>-<seed> stage, `--jobs` at a time, one of two ways:

- queue: each stage queued as a DVC experiment (`dvc exp run --queue train@...`), then `dvc
  queue start -j N`, as an earlier `make study` did; watched with `dvc queue status`;
- worktrees: `python -m src.running.study --jobs N`, as `make repro` does (src/running/workspaces.py).

A repetition stalls when no run finishes for `--stall-minutes` while some are still queued or
running; its workers are then killed. Printed per repetition and per way: runs succeeded,
failed and never finished, and the wall time (mostly start-up and the copies, at runs this
small; the queue's includes asking `dvc queue status` every few seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from src.ground import dvc_command, fake_cifar
from src.running import tiny_project
from src.running.plan import training_stages

POLL_SECONDS = 3.0
FINISHED = {"Success", "Failed"}


@dataclass
class Outcome:
    way: str
    repetition: int
    runs: int
    succeeded: int
    failed: int
    seconds: float
    stalled: bool

    @property
    def unfinished(self) -> int:
        return self.runs - self.succeeded - self.failed


def watch(counts: Callable[[], tuple[int, int]], runs: int, stall_seconds: float) -> tuple[int, int, bool]:
    """Poll `counts` (succeeded, failed) until every run finished, or none finished for
    `stall_seconds`; returns the last counts and whether it stalled."""
    last, last_change = (0, 0), time.monotonic()
    while True:
        current = counts()
        if current != last:
            last, last_change = current, time.monotonic()
        if sum(current) >= runs:
            return (*current, False)
        if time.monotonic() - last_change > stall_seconds:
            return (*current, True)
        time.sleep(POLL_SECONDS)


def queue_states(status_output: str) -> dict[str, str]:
    """{experiment: status} from `dvc queue status`'s table (its last column: Queued, Running,
    Success, Failed)."""
    states = {}
    for line in status_output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and re.fullmatch(r"[0-9a-f]{7,40}", fields[0]):  # a task id, not a header
            states[fields[1]] = fields[-1]
    return states


def run_queue(project: Path, stages: list[str], jobs: int, stall_seconds: float) -> tuple[int, int, bool]:
    """Every stage through DVC's experiment queue, `jobs` workers; (succeeded, failed, stalled)."""
    names = set()
    for stage in stages:
        output = dvc_command.run("exp", "run", "--queue", stage, cwd=project)
        found = re.search(r"Queued experiment '([^']+)'", output)
        if found is None:
            raise SystemExit(f"could not queue {stage}: {output.strip()}")
        names.add(found.group(1))
    dvc_command.run("queue", "start", "--jobs", str(jobs), cwd=project)

    def counts() -> tuple[int, int]:
        status = dvc_command.run("queue", "status", cwd=project, check=False)
        states = [state for name, state in queue_states(status).items() if name in names]
        return states.count("Success"), sum(state in FINISHED - {"Success"} for state in states)

    try:
        return watch(counts, len(stages), stall_seconds)
    finally:
        dvc_command.run("queue", "kill", *names, cwd=project, check=False)
        dvc_command.run("queue", "stop", "--kill", cwd=project, check=False)
        _kill_leftovers(project)


def _kill_leftovers(project: Path) -> None:
    """Kill what still runs in `project` (a stalled queue's workers), so the next repetition
    has the machine to itself."""
    import psutil

    folder = f"{project}{os.sep}"
    for process in psutil.process_iter(["cwd", "cmdline"]):
        inside = f"{process.info['cwd'] or ''}{os.sep}".startswith(folder)
        if inside or folder in " ".join(process.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                process.kill()


def run_worktrees(project: Path, stages: list[str], jobs: int, stall_seconds: float) -> tuple[int, int, bool]:
    """Every stage through `python -m src.running.study --jobs N`; (succeeded, failed, stalled)."""
    lines: list[str] = []
    # not src.ground.commands: a stall must kill the whole process group, runs included
    process = subprocess.Popen(
        [sys.executable, "-m", "src.running.study", "--jobs", str(jobs)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dvc_command.environment(),
        start_new_session=True,  # its own process group: a stall kills it and its runs
    )
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()

    def counts() -> tuple[int, int]:
        done = sum(bool(re.match(r"train@\S+: done after", line)) for line in list(lines))
        failed = sum(bool(re.match(r"train@\S+: FAILED", line)) for line in list(lines))
        return done, failed

    succeeded, failed, stalled = watch(counts, len(stages), stall_seconds)
    if stalled:
        os.killpg(process.pid, signal.SIGKILL)
    if process.wait() != 0 and not stalled:
        print("".join(lines[-20:]), file=sys.stderr)
    return succeeded, failed, stalled


WAYS = {"queue": run_queue, "worktrees": run_worktrees}


def repetition(way: str, index: int, tarball: Path, args: argparse.Namespace, work: Path) -> Outcome:
    project = tiny_project.create(work / f"{way}-{index}", tarball, args.models, args.seeds)
    dvc_command.run("repro", "prepare", cwd=project)
    stages = training_stages(project)
    started = time.monotonic()
    succeeded, failed, stalled = WAYS[way](project, stages, args.jobs, args.stall_minutes * 60)
    return Outcome(way, index, len(stages), succeeded, failed, time.monotonic() - started, stalled)


def _line(outcome: Outcome) -> str:
    state = "STALLED" if outcome.stalled else "finished"
    return (
        f"{outcome.way:<9} {outcome.repetition:>3} {outcome.runs:>4} {outcome.succeeded:>9} "
        f"{outcome.failed:>6} {outcome.unfinished:>10} {outcome.seconds:>8.0f}  {state}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks queue", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["mlp_l2", "simple_cnn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--stall-minutes", type=float, default=5.0)
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=list(WAYS))
    args = parser.parse_args(argv)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as directory:
        work = Path(directory)
        tarball = fake_cifar.write_tarball(work / "cifar-10-binary.tar.gz", tiny_project.IMAGES_PER_BATCH)
        print(f"{'way':<9} {'rep':>3} {'runs':>4} {'succeeded':>9} {'failed':>6} {'unfinished':>10} "
              f"{'seconds':>8}", flush=True)  # fmt: skip
        for index in range(1, args.repeats + 1):
            for way in args.ways:  # interleaved, so both see the machine alike
                outcomes.append(repetition(way, index, tarball, args, work))
                print(_line(outcomes[-1]), flush=True)
    print()
    for way in args.ways:
        mine = [outcome for outcome in outcomes if outcome.way == way]
        complete = sum(outcome.unfinished == 0 and outcome.failed == 0 for outcome in mine)
        seconds = sorted(outcome.seconds for outcome in mine)
        print(
            f"{way}: {complete}/{len(mine)} repetitions trained every run; "
            f"{sum(o.succeeded for o in mine)} of {sum(o.runs for o in mine)} runs succeeded, "
            f"{sum(o.failed for o in mine)} failed, {sum(o.unfinished for o in mine)} never finished; "
            f"wall {seconds[0]:.0f}-{seconds[-1]:.0f} s a repetition"
        )
