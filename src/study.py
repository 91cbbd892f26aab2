"""`make study`: the whole study, with several training runs side by side on one machine.

    python -m src.study [--jobs N] [--seeds 42 1 2]      (make study JOBS=2 SEEDS="42 1 2")

The same stages and the same bytes as `dvc repro`, by DVC's own means, no scheduler of ours:

1. `--seeds` sets params.yaml's `seeds` (as `dvc exp run -S seeds=[...]` would);
2. `dvc repro prepare` downloads and prepares the data if needed;
3. each training stage that `dvc status` reports out of date is queued as a DVC experiment
   (`dvc exp run --queue train@<id>-<seed>`), the longest first, and `dvc queue start -j N`
   runs N at a time, each with params.yaml's `train.threads` (a param: the thread count is
   part of the arithmetic); every finished run lands in DVC's cache and run-cache;
4. each run's dvc.lock entry is taken from its experiment, and `dvc repro` finds every trained
   stage in the cache, trains nothing, and runs `compare`;
5. the queued experiments are removed (their outputs stay in the cache).

With `--jobs 1` it is plain `dvc repro`. The queued runs train in DVC's own temporary copies of
the repository (`.dvc/tmp/exps`); `dvc queue logs <name>` shows a run's output. Ctrl-C stops
the queue and the runs in it; nothing is recorded for a run that did not finish.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from src import dvc_command
from src.cli import StageError, run_stage
from src.files import write_text
from src.params import PARAMS_FILE, load_params
from src.paths import TIMINGS_DIR, split_run_name

LOCK_FILE = Path("dvc.lock")


def poll_interval(elapsed: float) -> float:
    """Seconds between looks at the queue: often at first, then every 30 s at most (each look
    starts a `dvc` process, which takes CPU from the training runs)."""
    return min(30.0, max(2.0, elapsed / 20))


def set_seeds(seeds: list[int], params_file: Path = PARAMS_FILE) -> None:
    """Set params.yaml's `seeds`, keeping its comments, as `dvc exp run -S` does."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(params_file, [f"seeds=[{','.join(str(seed) for seed in seeds)}]"])


def outdated_training_stages() -> list[str]:
    """The train@<id>-<seed> stages that `dvc status` reports out of date."""
    status = json.loads(dvc_command.run("status", "--json") or "{}")
    return [stage for stage in status if stage.startswith("train@")]


def longest_first(stages: list[str], timings_dir: Path = TIMINGS_DIR) -> list[str]:
    """Order the stages by the training time their model took in the last runs (the queue runs
    them in this order, so the long ones do not end up last, alone); unknown ones first."""
    seconds: dict[str, float] = {}
    for path in sorted(timings_dir.glob("*.json")) if timings_dir.is_dir() else []:
        model_id = (split_run_name(path.stem) or (path.stem, 0))[0]
        train_seconds = float(json.loads(path.read_text())["train_seconds"])
        seconds[model_id] = max(seconds.get(model_id, 0.0), train_seconds)

    def cost(stage: str) -> float:
        run = split_run_name(stage.removeprefix("train@"))
        return seconds.get(run[0], float("inf")) if run else float("inf")

    return sorted(stages, key=cost, reverse=True)


def _queue_states(names: set[str]) -> dict[str, str]:
    """Our queued experiments' states from `dvc queue status` (Queued, Running, Success, Failed)."""
    states = {}
    for line in dvc_command.run("queue", "status").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] in names:
            states[fields[1]] = fields[-1]
    return states


def run_queue(stages: list[str], jobs: int) -> dict[str, str]:
    """Queue each stage as an experiment, run `jobs` at a time; returns {experiment: stage}."""
    names: dict[str, str] = {}
    for stage in stages:
        output = dvc_command.run("exp", "run", "--queue", stage)
        found = re.search(r"Queued experiment '([^']+)'", output)
        if found is None:
            raise StageError(f"could not queue {stage}: {output.strip()}")
        names[found.group(1)] = stage
    threads = load_params().train.threads
    print(f"training {len(stages)} runs, {jobs} at a time, {threads} thread(s) each", flush=True)
    dvc_command.run("queue", "start", "--jobs", str(jobs))
    started = time.monotonic()
    try:
        _wait(names, started)
    except KeyboardInterrupt:
        dvc_command.run("queue", "kill", *names, check=False)
        dvc_command.run("queue", "remove", *names, check=False)
        raise
    return names


def _wait(names: dict[str, str], started: float) -> None:
    from tqdm import tqdm

    finished: set[str] = set()
    failed: list[str] = []
    # a bar on a terminal; in logs, one line per finished run
    with tqdm(total=len(names), unit="run", file=sys.stdout, disable=not sys.stdout.isatty()) as bar:
        while len(finished) < len(names):
            time.sleep(poll_interval(time.monotonic() - started))
            states = _queue_states(set(names))
            for name, state in states.items():
                if state in ("Success", "Failed") and name not in finished:
                    finished.add(name)
                    bar.update(1)
                    minutes = (time.monotonic() - started) / 60
                    bar.write(
                        f"{names[name]}: {state.lower()} after {minutes:.1f} min ({name})", file=sys.stdout
                    )
                    sys.stdout.flush()
                    if state == "Failed":
                        failed.append(name)
            running = [names[name] for name, state in states.items() if state == "Running"]
            bar.set_postfix_str(", ".join(running))
            gone = sorted(set(names) - set(states) - finished)  # left the queue without an end state
            if gone:
                raise StageError(f"queued runs disappeared from `dvc queue status`: {gone}")
    if failed:
        logs = "; ".join(f"dvc queue logs {name}  ({names[name]})" for name in failed)
        raise StageError(f"{len(failed)} training run(s) failed, nothing was compared; see: {logs}")


def study(jobs: int, seeds: list[int] | None = None) -> None:
    """Run the whole study as `dvc repro` does, training up to `jobs` runs side by side."""
    if seeds is not None:
        set_seeds(seeds)
    load_params()  # a malformed params.yaml fails here, in one line, before anything runs
    dvc_command.stream_checked("repro", "prepare")
    stages = outdated_training_stages()
    if jobs == 1 or len(stages) < 2:
        dvc_command.stream_checked("repro")
        return
    names = run_queue(longest_first(stages), jobs)
    # the workspace's dvc.lock may name outputs that were never here (a fresh clone): then DVC
    # would train such a stage again rather than look in the run-cache; the queued runs' own
    # entries name what they just put in the cache
    _merge(_experiment_lock_entries(names))
    output = dvc_command.stream_checked("repro")
    retrained = [stage for stage in re.findall(r"Running stage '([^']+)'", output) if stage in stages]
    dvc_command.run("exp", "remove", *names, check=False)
    if retrained:  # the run-cache did not hold them: the results are right, only slower
        print(f"warning: {', '.join(retrained)} trained again in the workspace", file=sys.stderr)


def export_lock_entries(stages: list[str], out: Path, lock_file: Path = LOCK_FILE) -> None:
    """Write these stages' entries of dvc.lock to `out`: what a machine that trained (or
    restored) them hands on, with their outputs pushed to the shared remote."""
    entries = yaml.safe_load(lock_file.read_text())["stages"] if lock_file.exists() else {}
    missing = [stage for stage in stages if stage not in entries]
    if missing:
        raise StageError(
            f"dvc.lock has no entry for {missing}: run `dvc repro --pull {' '.join(missing)}` first"
        )
    write_text(out, yaml.safe_dump({"stages": {stage: entries[stage] for stage in stages}}, sort_keys=False))


def merge_lock_entries(parts: list[Path], lock_file: Path = LOCK_FILE) -> list[str]:
    """Put the stage entries of `parts` (from `export_lock_entries`) into dvc.lock; returns the stages.

    Why: `dvc repro --pull` restores a stage that matches its dvc.lock entry only from the
    outputs that entry names, never from the run-cache. A committed entry whose outputs no
    one pushed would then be trained again here, although another machine just trained and
    pushed it. With the entries of the machines that did the work, every stage is pulled.
    """
    entries: dict[str, Any] = {}
    for part in parts:
        entries.update(yaml.safe_load(part.read_text()).get("stages", {}))
    return _merge(entries, lock_file)


def _merge(entries: dict[str, Any], lock_file: Path = LOCK_FILE) -> list[str]:
    lock = yaml.safe_load(lock_file.read_text()) if lock_file.exists() else {"schema": "2.0"}
    lock["stages"] = {**(lock.get("stages") or {}), **entries}
    write_text(lock_file, yaml.safe_dump(lock, sort_keys=False))
    return list(entries)


def _experiment_lock_entries(names: dict[str, str]) -> dict[str, Any]:
    """Each queued run's dvc.lock entry for its stage, from its experiment's commit."""
    listing = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        capture_output=True,
        text=True,
        check=True,
    )
    refs = {ref.rsplit("/", 1)[-1]: ref for ref in listing.stdout.split()}
    entries = {}
    for name, stage in names.items():
        if name in refs:
            shown = subprocess.run(["git", "show", f"{refs[name]}:dvc.lock"], capture_output=True, text=True)
            stages = (yaml.safe_load(shown.stdout) or {}).get("stages", {}) if shown.returncode == 0 else {}
            if stage in stages:
                entries[stage] = stages[stage]
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="training runs side by side (default 1)")
    parser.add_argument("--seeds", type=int, nargs="+", help="set params.yaml's seeds first")
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
        return
    if args.merge_lock:
        print(f"dvc.lock: entries of {', '.join(merge_lock_entries(args.merge_lock))}")
        return
    if args.jobs < 1:
        raise StageError(f"--jobs {args.jobs}: give 1 or more")
    study(args.jobs, args.seeds)


if __name__ == "__main__":
    run_stage(main)
