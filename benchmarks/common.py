"""What the benchmarks share: the study's own way of training, an epoch timer, fresh worker processes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from src.ground import commands

ROOT = Path(__file__).resolve().parents[1]


def run_worker(module: str, *args: str, cwd: Path = ROOT, show_progress: bool = False) -> dict:
    """Run `python -m benchmarks.<module> --worker ...` in a fresh process (its own peak memory and
    TensorFlow kernel choice); returns the JSON of its last stdout line. Its stderr (TensorFlow's
    start-up lines, the epochs) shows as it goes with `show_progress`, else only if it fails."""
    command = [sys.executable, "-m", f"benchmarks.{module}", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    if show_progress:  # shown on stderr as it goes (stdout carries results); the JSON is the last line
        status, output = commands.stream(command, cwd=cwd, env=env, echo=sys.stderr)
        if status:
            raise commands.CommandError(command, status, output)
    else:
        output = commands.run(command, cwd=cwd, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def choose_kernels(way: str, train_cfg: Any = None) -> None:
    """Choose TensorFlow's kernels in a fresh worker, before TensorFlow is imported.

    "pipeline": the train stage's own choice (train.onednn, train.cpu_isa, train.device);
    "study": TensorFlow's own default, as the original study ran; "study-onednn": its oneDNN
    kernels.
    """
    if way == "pipeline":
        from src.learning.speed import configure_tensorflow
        from src.learning.training import select_device

        configure_tensorflow(train_cfg.onednn, train_cfg.cpu_isa)
        select_device(train_cfg.device)
    elif way == "study-onednn":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    else:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)


def epoch_timer(keras: Any) -> Any:
    """A Keras callback that records each epoch's wall time in `.times`."""
    base: Any = keras.callbacks.Callback

    class EpochTimer(base):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.times.append(time.perf_counter() - self.start)

    return EpochTimer()


def study_style_model(config: Any) -> Any:
    """The study's model: the registry's layers on float input, without the uint8 scaling layer."""
    import keras

    from src.ground.data import CLASSES, IMAGE_SHAPE
    from src.learning.models import build_model

    built = build_model(config.builder, IMAGE_SHAPE, len(CLASSES), **config.builder_kwargs)
    model = keras.Sequential([keras.Input(IMAGE_SHAPE), *built.layers[2:]], name=built.name)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit_study_style(
    model: Any,
    config: Any,
    train: Any,
    val: Any,
    epochs: int,
    callbacks: list[Any],
    pipeline_order_seed: int | None = None,
) -> Any:
    """`fit` on float32 arrays in [0, 1], as the study did (or on the train stage's batches, in its order)."""
    (x, y), (x_val, y_val) = train, val
    if pipeline_order_seed is None:
        data = {"x": x.astype("float32") / 255.0, "y": y.astype("int32"), "batch_size": config.batch_size}
    else:  # no float copy of the whole training set: the batches are scaled as they are drawn
        import tensorflow as tf

        from src.learning.callbacks import epoch_draws
        from src.learning.training import datasets

        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        batches, _ = datasets(
            x, y, x_val, y_val, config.batch_size, config.batch_size, pipeline_order_seed, epoch
        )
        data = {"x": batches.map(lambda images, labels: (tf.cast(images, tf.float32) / 255.0, labels))}
        callbacks = [epoch_draws([], epoch, 1), *callbacks]  # the pipeline's order of each epoch
    return model.fit(
        **data,
        epochs=epochs,
        validation_data=(x_val.astype("float32") / 255.0, y_val.astype("int32")),
        callbacks=callbacks,
        verbose=0,
    )
