"""Every op the models run computes the bytes recorded on another machine, with any thread count.

tests/golden/op_digests.json holds `python -m tests.op_digests` as recorded on the machine its
"machine" entry names. A failure lists the ops that round differently here: the op to fix (or to
key the run-cache on) before the models drift apart (docs/reproducibility.md). A change that
alters an op on purpose rerecords the file with `python -m tests.op_digests --record`.
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
from tests.op_digests import GOLDEN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("avx2" not in cpu_flags(), reason="the recorded digests are of AVX2 kernels"),
]


@pytest.mark.parametrize("threads", [4])  # the stage tests cover 1 and 4 threads too
def test_every_op_gives_the_recorded_bytes(threads: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for variable in ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS"):  # set as the stage sets them
        env.pop(variable, None)
    command = [sys.executable, "-m", "tests.op_digests", "--threads", str(threads)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    here, recorded = json.loads(result.stdout), json.loads(GOLDEN.read_text())
    assert here["machine"]["intra_op_threads"] == threads
    differ = [op for op, value in recorded["digests"].items() if here["digests"].get(op) != value]
    assert sorted(here["digests"]) == sorted(recorded["digests"]), "the ops covered changed: rerecord"
    assert not differ, (
        f"{len(differ)} of {len(recorded['digests'])} ops round differently on {here['machine']['cpu']} "
        f"with {threads} thread(s) than on {recorded['machine']['cpu']}: " + "; ".join(differ)
    )
    approximate = [
        op
        for op, value in recorded["not used by the models"].items()
        if here["not used by the models"][op] != value
    ]
    if approximate:  # expected between CPU makers: why src/learning/layers.py avoids them
        warnings.warn(
            f"CPU estimates differ from the recorded machine's: {', '.join(approximate)}", stacklevel=1
        )
