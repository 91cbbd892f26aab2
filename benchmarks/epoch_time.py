"""Seconds per training epoch of every model in params.yaml, on any Keras backend.

Trains each model the way the study did (Keras `fit` on in-memory arrays, batch 32,
validation on 10,000 images every epoch) on synthetic CIFAR-shaped uint8 data, for a few
epochs, and reports the first epoch (which includes compilation) and the mean of the rest.
It needs only Keras, NumPy and pydantic, so it also runs where TensorFlow is not
installed, e.g. on a GPU machine with JAX:

    KERAS_BACKEND=jax python benchmarks/epoch_time.py --precision float32 mixed_float16

Ends with one JSON line per model and precision.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model ids from params.yaml (default: all)")
    parser.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "mixed_float16"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is reported apart")
    parser.add_argument("--train-images", type=int, default=50_000)
    parser.add_argument("--val-images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras
    import numpy as np

    from src.models import build_model
    from src.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    model_ids = args.models or list(params.models)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.train_images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.train_images).astype("int32")
    x_val = rng.integers(0, 256, (args.val_images, 32, 32, 3), dtype=np.uint8)
    y_val = rng.integers(0, 10, args.val_images).astype("int32")
    device = _device_name(keras.backend.backend())
    print(
        f"backend {keras.backend.backend()}, device {device}, {args.train_images:,} train images", flush=True
    )

    results = []
    for precision in args.precision:
        keras.mixed_precision.set_dtype_policy(precision)
        for model_id in model_ids:
            config = params.models[model_id]
            keras.utils.set_random_seed(params.seeds[0])
            model = build_model(config.builder, (32, 32, 3), 10, **config.builder_kwargs)
            model.compile(
                optimizer=keras.optimizers.Adam(config.learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            timer = epoch_timer(keras)
            model.fit(
                x,
                y,
                batch_size=args.batch_size,
                epochs=args.epochs,
                validation_data=(x_val, y_val),
                callbacks=[timer],
                verbose=0,
            )
            times = timer.times
            steady = sum(times[1:]) / max(1, len(times) - 1)
            result = {
                "model": model_id,
                "backend": keras.backend.backend(),
                "device": device,
                "precision": precision,
                "first_epoch_s": round(times[0], 2),
                "epoch_s": round(steady, 2),
                "train_images_per_s": round(args.train_images / steady),
            }
            results.append(result)
            print(
                f"{model_id:15s} {precision:14s} first epoch {times[0]:6.1f} s, then {steady:6.1f} s/epoch",
                flush=True,
            )
    for result in results:
        print(json.dumps(result))


def epoch_timer(keras):  # type: ignore[no-untyped-def]
    """A Keras callback that records each epoch's wall time in `.times`."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.times.append(time.perf_counter() - self.start)

    return EpochTimer()


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
