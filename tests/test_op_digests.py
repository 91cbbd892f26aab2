"""Every op the models run computes the bytes recorded on a CPU of the same maker, with any
thread count, and differs from the other maker's only in the ops known to.

tests/golden/op_digests-{intel,amd}.json hold `python -m tests.op_digests --record` as recorded
on the machines their "machine" entries name. A failure lists the ops that round differently
here: the op to fix (or to key the run-cache on) before the models drift apart
(docs/reproducibility.md). A change that alters an op on purpose rerecords both files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from src.learning.speed import cpu_flags
from tests.conftest import ROOT
from tests.op_digests import KNOWN_MAKER_DIFFERENCES, MAKERS, golden, this_maker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("avx2" not in cpu_flags(), reason="the recorded digests are of AVX2 kernels"),
    pytest.mark.skipif(this_maker() is None, reason="digests are recorded for Intel and AMD CPUs"),
]


def _differ(here: dict, recorded: dict) -> set[str]:
    assert sorted(here["digests"]) == sorted(recorded["digests"]), "the ops covered changed: rerecord"
    return {op for op, value in recorded["digests"].items() if here["digests"][op] != value}


@pytest.mark.parametrize("threads", [4])  # the recorded digests are of 2 threads
def test_every_op_gives_the_recorded_bytes(threads: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for variable in ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS"):  # set as the stage sets them
        env.pop(variable, None)
    command = [sys.executable, "-m", "tests.op_digests", "--threads", str(threads)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    here = json.loads(result.stdout)
    assert here["machine"]["intra_op_threads"] == threads
    maker = str(this_maker())
    [other] = set(MAKERS.values()) - {maker}
    same, different = (json.loads(golden(m).read_text()) for m in (maker, other))
    differ = _differ(here, same)
    assert not differ, (
        f"{len(differ)} ops round differently on {here['machine']['cpu']} with {threads} thread(s) than on "
        f"{same['machine']['cpu']}, with 2: " + "; ".join(sorted(differ))
    )
    assert _differ(here, different) == KNOWN_MAKER_DIFFERENCES, (
        f"other ops than the known ones round differently on {different['machine']['cpu']}"
    )
    approximate = [
        op
        for op, value in same["not used by the models"].items()
        if here["not used by the models"][op] != value
    ]
    if approximate:  # CPU estimates: why src/learning/layers.py avoids them
        warnings.warn(
            f"CPU estimates differ from the recorded machine's: {', '.join(approximate)}", stacklevel=1
        )
