"""The study's wall time on more cores or a cluster: a projection from the recorded runs' timings.

    python -m benchmarks scaling [--cores 2 4 8 16 64] [--slowdown 1.0 1.35] [--overhead 20]
                                 [--cluster-nodes 15] [--queue-wait 60]
    (or: make bench ARGS="scaling")

Not a measurement: a simulation. Each run of reports/timings/<id>-<seed>.json takes its recorded
training time (plus `--overhead` seconds per run for its workspace, DVC and TensorFlow's start),
stretched by a slowdown factor for running beside others (memory bandwidth and caches shared);
`make repro` starts the longest first, `cores // train.threads` at a time (list scheduling), and
`compare` adds its recorded seconds. A cluster row gives every run its own node after a queue
wait. The two slowdowns bound the result: 1.0 (no interference) and the largest slowdown measured
for two runs side by side on a 2-core machine (docs/scaling-out.md).
"""

from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

from benchmarks.common import ROOT

COMPARE_SECONDS = 30.0  # compare's own run, about the same on any machine


def recorded_seconds(timings_dir: Path = ROOT / "reports" / "timings") -> dict[str, float]:
    paths = sorted(timings_dir.glob("*.json"))
    return {path.stem: float(json.loads(path.read_text())["train_seconds"]) for path in paths}


def wall_time(seconds: list[float], slots: int) -> float:
    """List scheduling, longest first, on `slots` parallel workers: when the last run ends."""
    ends = [0.0] * max(1, slots)
    for duration in sorted(seconds, reverse=True):
        start = heapq.heappop(ends)
        heapq.heappush(ends, start + duration)
    return max(ends)


def project(runs: dict[str, float], cores: int, threads: int, slowdown: float, overhead: float) -> float:
    slots = max(1, cores // threads)
    stretched = [(seconds * (slowdown if slots > 1 else 1.0)) + overhead for seconds in runs.values()]
    return wall_time(stretched, slots) + COMPARE_SECONDS


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, nargs="+", default=[2, 4, 8, 16, 64])
    parser.add_argument("--slowdown", type=float, nargs=2, default=[1.0, 1.35])
    parser.add_argument("--overhead", type=float, default=20.0, help="seconds per run besides training")
    parser.add_argument(
        "--queue-wait", type=float, default=60.0, help="cluster: seconds before a task starts"
    )
    args = parser.parse_args(argv)
    from src.ground.params import load_params

    threads = load_params(ROOT / "params.yaml").train.threads
    runs = recorded_seconds()
    if not runs:
        raise SystemExit("reports/timings/ holds no runs: run the study first")
    training = sum(runs.values()) / 60
    low_factor, high_factor = args.slowdown
    print(f"projection from {len(runs)} recorded runs ({training:.1f} min of training), {threads} threads")
    print(f"a run, {args.overhead:.0f} s overhead a run, slowed {low_factor} to {high_factor}x beside others")
    print(f"| machine | runs side by side | no slowdown | slowdown x{high_factor:.2f} |")
    print("|---|---|---|---|")
    for cores in args.cores:
        low, high = (project(runs, cores, threads, factor, args.overhead) for factor in args.slowdown)
        print(f"| {cores} cores | {max(1, cores // threads)} | {low / 60:.0f} min | {high / 60:.0f} min |")
    longest = max(runs.values()) + args.overhead + args.queue_wait + COMPARE_SECONDS
    print(f"| cluster, a node per run | {len(runs)} | {longest / 60:.0f} min | {longest / 60:.0f} min |")
