"""What a training run records about itself in run.json: the library versions that decide its
bytes, the machine it ran on, its peak memory and its weight counts.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
from importlib import metadata
from typing import Any

import numpy as np

from src.learning.speed import cpuinfo_field


def count_weights(weights: list[Any]) -> int:
    """How many numbers the weights hold."""
    return int(sum(np.prod(w.shape) for w in weights))


def versions() -> dict[str, Any]:
    """Python, the Keras backend and the library versions of this run: part of what decides its bytes."""
    import keras

    packages = {}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "dvc", "dvclive", "numpy", "scikit-learn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[package] = metadata.version(package)
    return {"python": platform.python_version(), "keras_backend": keras.backend.backend(), **packages}


def host() -> dict[str, Any]:
    """The machine this run trained on (does not decide its bytes on CPUs with AVX2)."""
    import tensorflow as tf

    cpu = cpuinfo_field("model name") or platform.processor()
    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "device": "GPU" if gpus else "CPU",
    }


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))  # bytes on macOS, KiB elsewhere
