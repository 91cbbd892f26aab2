"""The train stage computes what params.yaml says, whatever machine it lands on.

Each run here is the real stage (`python -m src.train <id>`) in a fresh process on the tiny
prepared data, so TensorFlow starts with the thread pools and kernels the stage chooses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.paths import live_dir, model_path, predictions_path
from src.speed import cpu_flags
from tests.conftest import ROOT

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.slow

GOLDEN = ROOT / "tests" / "golden" / "tiny_runs.json"
SEED = 42  # params.yaml's first seed, which the stage uses without --seed
TWO_CORES = sorted(os.sched_getaffinity(0))[:2] if hasattr(os, "sched_getaffinity") else []


def _weights_sha256(model_id: str) -> str:
    weights = keras.saving.load_model(model_path(model_id, SEED)).get_weights()
    return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()


def run_stage(
    model_id: str, cores: list[int] | None = None, threads: int | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Run train@<id> in a fresh process (on `cores` only and with $TRAIN_THREADS=`threads`, if
    given); digests of what it wrote."""
    shutil.rmtree(live_dir(model_id, SEED), ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)  # the stage sets it from train.cpu_isa
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env.pop("TRAIN_THREADS", None)
    if threads is not None:
        env["TRAIN_THREADS"] = str(threads)

    def pin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)

    result = subprocess.run(
        [sys.executable, "-m", "src.train", model_id], env=env, capture_output=True, text=True, preexec_fn=pin
    )
    assert result.returncode == 0, result.stderr
    run = json.loads((live_dir(model_id, SEED) / "run.json").read_text())
    return {
        "metrics_sha256": hashlib.sha256(
            (live_dir(model_id, SEED) / "metrics.json").read_bytes()
        ).hexdigest(),
        "predictions_sha256": hashlib.sha256(predictions_path(model_id, SEED).read_bytes()).hexdigest(),
        "weights_sha256": _weights_sha256(model_id),
        "kernels_isa": run["cpu_isa"]["kernels_isa"],
    }, run["threads"]


@pytest.mark.skipif("avx2" not in cpu_flags(), reason="the recorded digests are of AVX2 kernels")
def test_the_same_bytes_as_the_recorded_run_on_any_avx2_cpu(in_prepared_project: Path) -> None:
    """train.cpu_isa: avx2 gives the bytes an AVX2 machine gave, on AVX-512 machines too.

    tests/golden/tiny_runs.json holds the digests of these runs as recorded with AVX2 kernels
    and the library versions of requirements.lock (on an AVX-512 CPU capped at AVX2, which
    reproduced an AVX2 machine's full study byte for byte). A change that alters the training
    arithmetic on purpose updates them: `python -m tests.test_reproducible` (on any CPU with
    AVX2) rewrites the file, and the diff shows what changed.
    """
    model_id = "simple_cnn"  # in two shards; mlp_bn, unsplit, below
    digests, threads = run_stage(model_id, cores=TWO_CORES or None)
    assert digests["kernels_isa"] == "AVX2" and threads["train_threads"] == 2
    recorded = json.loads(GOLDEN.read_text())[model_id]
    assert digests == recorded, (
        f"{model_id} computed other bytes than the recorded AVX2 run (CPU flags: {sorted(cpu_flags())}); "
        "if the change of arithmetic is intended, rerun `python -m tests.test_reproducible`"
    )


@pytest.mark.skipif("avx2" not in cpu_flags(), reason="the recorded digests are of AVX2 kernels")
def test_one_core_and_one_thread_give_the_same_bytes(in_prepared_project: Path) -> None:
    """The thread count does not change the arithmetic, nor does the core count: mlp_bn, whose
    matrix products the intra-op threads split, on one core with one thread gives the bytes
    recorded with two (what lets `make study JOBS=2` give each run half of the cores)."""
    model_id = "mlp_bn"
    digests, threads = run_stage(model_id, cores=TWO_CORES[:1] or None, threads=1)
    assert threads["train_threads"] == 1 and threads["intra_op"] == 1
    assert digests == json.loads(GOLDEN.read_text())[model_id]


def _record() -> None:
    """Rewrite the recorded digests (run from the repository root)."""
    import tempfile

    import yaml

    from src.data import PREPARED_DIR
    from src.prepare import read_tarball, save_splits, split
    from tests import fake_cifar
    from tests.conftest import IMAGES_PER_BATCH, VAL_SIZE, tiny_params, write_params

    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        tarball = fake_cifar.write_tarball(work / "cifar-10-binary.tar.gz", IMAGES_PER_BATCH)
        params = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()), tarball)
        write_params(work, params)
        save_splits(
            split(read_tarball(tarball, IMAGES_PER_BATCH), VAL_SIZE, params["seed"]), work / PREPARED_DIR
        )
        os.chdir(work)
        digests = {model_id: run_stage(model_id)[0] for model_id in ("mlp_bn", "simple_cnn")}
    GOLDEN.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    _record()
