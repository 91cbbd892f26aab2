"""Time and peak memory of the prepare stage on a full CIFAR-10 tarball.

    python -m benchmarks prepare [data/raw/cifar-10-binary.tar.gz]

Runs in a fresh process per measurement so that peak resident memory (ru_maxrss) is that
step's own: (1) decompressing the whole tarball and nothing else, the floor for any reader;
(2) the full stage: read and check all batches, split, write the .npz files, data stats.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT
from src.ground import commands

DECOMPRESS = """
import gzip, resource, sys, time
start = time.perf_counter()
with gzip.open(sys.argv[1], "rb") as f:
    while f.read(1 << 20):
        pass
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

PREPARE = """
import resource, sys, time
from pathlib import Path
from src.stages.prepare import data_stats, read_tarball, save_splits, split
start = time.perf_counter()
splits = split(read_tarball(Path(sys.argv[1])), val_size=5000, seed=42)
save_splits(splits, Path(sys.argv[2]))
data_stats(splits)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _measure(script: str, *args: str) -> tuple[float, float]:
    out = commands.output([sys.executable, "-c", script, *args], cwd=ROOT).split()
    return float(out[0]), int(out[1]) / 1024  # seconds, MiB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks prepare", description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, nargs="?", default=Path("data/raw/cifar-10-binary.tar.gz"))
    tarball = parser.parse_args(argv).tarball.resolve()
    if not tarball.is_file():
        parser.error(f"{tarball} not found: run `dvc repro download` first, or name a CIFAR-10 tarball")
    gunzip_s, gunzip_mib = _measure(DECOMPRESS, str(tarball))
    with tempfile.TemporaryDirectory() as out:
        prepare_s, prepare_mib = _measure(PREPARE, str(tarball), out)
    print(f"decompress only : {gunzip_s:5.1f} s, peak {gunzip_mib:6.0f} MiB")
    print(f"prepare stage   : {prepare_s:5.1f} s, peak {prepare_mib:6.0f} MiB (target: < 10 s, < 1,536 MiB)")
    print(
        json.dumps(
            {
                "decompress_s": round(gunzip_s, 2),
                "prepare_s": round(prepare_s, 2),
                "prepare_peak_mib": round(prepare_mib),
                "decompress_peak_mib": round(gunzip_mib),
            }
        )
    )


if __name__ == "__main__":
    main()
