"""The train stage computes what params.yaml says, whatever machine (CPU maker, cores, threads)
it lands on.

Each run here is the real stage (`python -m src.stages.train <id>`) in a fresh process on the tiny
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
import yaml

from src.ground.paths import live_dir, model_path, predictions_path
from src.learning.model_file import load_model
from src.learning.speed import cpu_flags, cpuinfo_field
from tests.conftest import ROOT

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.slow

GOLDEN = ROOT / "tests" / "golden" / "tiny_runs.json"
SEED = 42  # params.yaml's first seed, which the stage uses without --seed
MODELS = ("mlp_bn", "mlp_l2", "simple_cnn", "cnn_da_dropout", "resnet")
ONE_CORE = sorted(os.sched_getaffinity(0))[:1] if hasattr(os, "sched_getaffinity") else None


def _weights_sha256(model_id: str) -> str:
    weights = load_model(model_path(model_id, SEED)).get_weights()
    return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()


def _files_sha256(*paths: Path) -> str:
    """One digest of every file under `paths`, names included: what DVC hashes of the stage
    (run.json apart: it names the thread count, which these tests vary)."""
    digest = hashlib.sha256()
    for path in paths:
        for file in sorted([path] if path.is_file() else path.rglob("*")):
            if file.is_file() and file.name != "run.json":
                digest.update(file.as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def run_stage(
    model_id: str, cores: list[int] | None = None, threads: int | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Run train@<id> in a fresh process (on `cores` only and with train.threads = `threads`,
    if given); digests of what it wrote, and the thread pools it used."""
    shutil.rmtree(live_dir(model_id, SEED), ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)  # the stage sets it from train.cpu_isa
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if threads is not None:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["train"]["threads"] = threads
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def pin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)

    result = subprocess.run(
        [sys.executable, "-m", "src.stages.train", model_id],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=pin,
    )
    assert result.returncode == 0, result.stderr
    outputs = live_dir(model_id, SEED)
    run = json.loads((outputs / "run.json").read_text())
    without_threads = {key: value for key, value in run.items() if key != "threads"}
    return {
        "run_sha256": hashlib.sha256(json.dumps(without_threads, sort_keys=True).encode()).hexdigest(),
        "outputs_sha256": _files_sha256(outputs, model_path(model_id, SEED)),
        "metrics_sha256": hashlib.sha256((outputs / "metrics.json").read_bytes()).hexdigest(),
        "predictions_sha256": hashlib.sha256(predictions_path(model_id, SEED).read_bytes()).hexdigest(),
        "weights_sha256": _weights_sha256(model_id),
        "kernels_isa": run["cpu_isa"]["kernels_isa"],
    }, run["threads"]


@pytest.mark.skipif("avx2" not in cpu_flags(), reason="the recorded digests are of AVX2 kernels")
@pytest.mark.parametrize("threads", [1])  # 4 change simple_cnn's bytes on AMD EPYC (docs)
@pytest.mark.parametrize("model_id", MODELS)
def test_every_model_gives_the_recorded_bytes_on_one_thread_and_one_core(
    in_prepared_project: Path, model_id: str, threads: int
) -> None:
    """train@<id> writes the recorded bytes (model file, weights, metrics, predictions, curves,
    run.json but for its thread counts: everything DVC hashes) with one thread on one core
    (train.threads; more threads may change the bytes, so it is a param).

    tests/golden/tiny_runs.json holds the digests recorded with two threads on the machine
    docs/reproducibility.md names, of the other CPU maker than the machine that checked them,
    with the library versions of requirements.lock and oneDNN capped at AVX2 (train.cpu_isa).
    A change that alters the training arithmetic on purpose rerecords them: `python -m
    tests.test_reproducible` (on any CPU with AVX2), and the diff shows what changed.
    """
    cores = ONE_CORE if threads == 1 else None
    digests, pools = run_stage(model_id, cores=cores, threads=threads)
    assert digests["kernels_isa"] == "AVX2" and pools["train_threads"] == threads
    recorded = json.loads(GOLDEN.read_text())[model_id]
    differ = sorted(key for key in recorded if digests[key] != recorded[key])
    assert not differ, (
        f"{model_id} with {threads} thread(s) computed other bytes ({', '.join(differ)}) than the "
        f"recorded run, here on {cpuinfo_field('model name')}: tests/test_op_digests.py names the op; "
        "if the change of arithmetic is intended, rerun `python -m tests.test_reproducible`"
    )


def _record() -> None:
    """Rewrite the recorded digests (run from the repository root)."""
    import tempfile

    from src.ground import fake_cifar
    from src.ground.paths import PREPARED_DIR
    from src.stages.prepare import read_tarball, save_splits, split
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
        digests = {model_id: run_stage(model_id)[0] for model_id in MODELS}
    GOLDEN.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    _record()
