"""The speed levers (src/learning/speed/): each switch reaches TensorFlow, none changes the rule, and
no module outside src/learning/speed/ touches a private Keras or TensorFlow name."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from src.learning.speed import cpu_isa_record
from tests.conftest import ROOT

keras = pytest.importorskip("keras")

# Private Keras / TensorFlow names this project uses, and the ways into private modules.
PRIVATE = re.compile(
    r"keras\.src|tensorflow\.python|__internal__|_pywrap|_get_variable_index|_momentums|_velocities"
    r"|_run_through_graph|_keras_logits|_seed_generators|_with_call_context"
)


def test_only_src_speed_touches_private_keras_or_tensorflow_names() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("src/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]):
        if path.is_relative_to(ROOT / "src" / "learning" / "speed"):
            continue
        offenders += [f"{path.relative_to(ROOT)}: {m.group()}" for m in PRIVATE.finditer(path.read_text())]
    assert offenders == []
    assert PRIVATE.search(
        (ROOT / "src" / "learning" / "speed" / "shards.py").read_text()
    )  # the pattern finds them


def test_cpu_isa_record_says_which_kernels_ran() -> None:
    avx512 = {"avx2", "fma", "avx512f", "sse4_2"}
    assert cpu_isa_record("avx2", avx512)["kernels_isa"] == "AVX2"
    assert cpu_isa_record("avx2", avx512)["cpu_flags"] == ["avx2", "avx512f", "fma"]
    assert cpu_isa_record("native", avx512)["kernels_isa"] == "native"
    assert cpu_isa_record("avx2", {"avx", "sse4_2"})["kernels_isa"] == "below AVX2"


def test_fused_adam_follows_keras_adam() -> None:
    """The fused kernel applies Keras's Adam rule: same weights after a few steps, up to rounding."""
    from src.ground.params import ModelParams, TrainParams
    from src.learning.speed import _fused_adam_step
    from src.learning.training import make_optimizer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 20)).astype("float32")
    y = rng.integers(0, 3, 64)
    config = ModelParams(
        builder="mlp_l2", display_name="MLP", epochs=1, batch_size=16, optimizer="adam", learning_rate=0.01
    )
    weights = []
    for fused in (True, False):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3)])
        optimizer = make_optimizer(config, TrainParams(fused_optimizer=fused))
        assert (optimizer.update_step.__func__ is _fused_adam_step) is fused
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for fused_w, keras_w in zip(*weights, strict=True):
        np.testing.assert_allclose(fused_w, keras_w, rtol=1e-4, atol=1e-6)
        assert np.abs(fused_w).sum() > 0


@pytest.mark.parametrize("onednn", [True, False])
def test_train_onednn_picks_tensorflows_kernels(onednn: bool) -> None:
    """train.onednn reaches TensorFlow, which reads it once at import: set before that, in a fresh process."""
    code = (
        "from src.learning.speed import configure_tensorflow, onednn_enabled\n"
        f"configure_tensorflow(onednn={onednn}, cpu_isa='avx2')\n"
        "import tensorflow\n"
        "print(onednn_enabled())\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "0" if onednn else "1"  # the param wins over the environment
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1] == str(onednn)
