"""The builders are pure Keras 3: every model builds and trains a step on each installed backend."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

SCRIPT = """
import keras, numpy as np
from src.models import BUILDERS, build_model
from src.params import load_params
params = load_params("params.yaml")
x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
y = np.arange(8) % 10
configs = [(c.builder, c.builder_kwargs) for c in params.models.values()] + [("resnet_cifar", {"depth": 8})]
assert {b for b, _ in configs} == set(BUILDERS)
for builder, kwargs in configs:
    model = build_model(builder, (32, 32, 3), 10, **kwargs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss), builder
    print(keras.backend.backend(), builder, "ok")
"""


@pytest.mark.parametrize("backend", list(BACKEND_MODULES))
def test_every_builder_trains_one_step(backend: str) -> None:
    if importlib.util.find_spec(BACKEND_MODULES[backend]) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == 6
    assert all(line.startswith(backend) for line in result.stdout.splitlines())
