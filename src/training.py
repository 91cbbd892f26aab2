"""How a model is trained and scored: the mechanics the train stage and the benchmarks share.

    select_device(device)  -> the GPUs training uses (none for train.device: cpu)
    prepare_model(config, train_cfg, seed, threads)  -> compiled model (seeded, threads set)
    fit(model, config, train_cfg, train, val, seed, callbacks)
    plain_model(model), scores(y, y_pred)
    run records: versions(), host(), peak_rss_mib(), count_weights(weights)

Training runs on Keras's TensorFlow backend (tf.data, DVCLive's Keras callback and every
speed lever are TensorFlow's); the model builders themselves are plain Keras. The speed
levers live in src/speed/, the only code that touches private Keras or TensorFlow names; the
callbacks (Ctrl-C, one line per epoch, DVCLive) in src/callbacks.py. TensorFlow is imported
inside the functions, so that `src.speed.configure_tensorflow` can choose its kernels first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import resource
import sys
from importlib import metadata
from typing import Any

import numpy as np

from src.cli import StageError
from src.data import CLASSES, IMAGE_SHAPE
from src.models import build_model
from src.params import ModelParams, TrainParams
from src.speed import configure_threads, cpuinfo_field, fuse_adam, set_op_determinism

log = logging.getLogger(__name__)


def require_tensorflow_backend() -> None:
    import keras

    if keras.backend.backend() != "tensorflow":
        raise StageError(
            f"training runs on Keras's TensorFlow backend, and KERAS_BACKEND selects "
            f"{keras.backend.backend()!r}: unset KERAS_BACKEND (the model builders alone run on any backend)"
        )


def select_device(device: str) -> list[str]:
    """Train where params.yaml's `train.device` says; returns the GPUs TensorFlow will use.

    `cpu` hides every GPU from TensorFlow (before it loads, through CUDA_VISIBLE_DEVICES), so a
    machine with a GPU computes the same bytes as any other CPU run. `gpu` needs at least one
    visible GPU and stops otherwise: a run recorded as a GPU run never silently trains on the
    CPU. Call before TensorFlow starts its runtime.
    """
    if device == "cpu":
        if "tensorflow" in sys.modules:
            import tensorflow as tf

            tf.config.set_visible_devices([], "GPU")
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        return []
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        if not tf.test.is_built_with_cuda():
            why = "this TensorFlow is the CPU-only build: run make setup-gpu"
        elif os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            why = f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} hides them: unset it"
        else:
            why = "check the NVIDIA driver with nvidia-smi"
        raise StageError(f"train.device is gpu but TensorFlow sees no GPU ({why}), or set train.device: cpu")
    return [gpu.name for gpu in gpus]


def seed_everything(seed: int, op_determinism: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; make TensorFlow's ops deterministic unless XLA is on."""
    import keras

    keras.utils.set_random_seed(seed)
    set_op_determinism(op_determinism)


def _strategy(train: TrainParams):  # type: ignore[no-untyped-def]
    """One device, or MirroredStrategy over all visible GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if train.strategy == "mirrored" or (train.strategy == "auto" and len(gpus) > 1):
        strategy = tf.distribute.MirroredStrategy()
        log.info("MirroredStrategy over %d replicas", strategy.num_replicas_in_sync)
        return strategy
    return tf.distribute.get_strategy()


def fuses_adam(config: ModelParams, train_cfg: TrainParams) -> bool:
    """Whether this model's Adam runs as the fused kernel."""
    return train_cfg.fused_optimizer and config.optimizer == "adam"


def make_optimizer(config: ModelParams, train_cfg: TrainParams):  # type: ignore[no-untyped-def]
    import keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    optimizer = optimizers[config.optimizer](learning_rate=config.learning_rate)
    return fuse_adam(optimizer) if fuses_adam(config, train_cfg) else optimizer


def shard_count(config: ModelParams) -> int:
    """The shards each batch is split into (`cpu_shards`; 1 where a GPU is visible)."""
    from src.speed.shards import resolve_shards

    try:
        return resolve_shards(config.cpu_shards, config.batch_size)
    except ValueError as err:
        raise StageError(f"{err}; lower cpu_shards") from None


def plain_model(model):  # type: ignore[no-untyped-def]
    """The Keras model itself, without the batch shards it may train in."""
    from src.speed.shards import BatchShards

    return model.model if isinstance(model, BatchShards) else model


def compile_model(config: ModelParams, train_cfg: TrainParams, shards: int = 1):  # type: ignore[no-untyped-def]
    """Build a model from the registry and compile it with its recipe (under the distribution strategy).

    With `shards` > 1 the compiled model is the built one wrapped in BatchShards;
    `plain_model` gives back the built one.
    """
    import keras

    with _strategy(train_cfg).scope():
        model = build_model(config.builder, IMAGE_SHAPE, len(CLASSES), **config.builder_kwargs)
        if shards > 1:
            from src.speed.shards import BatchShards, unshardable_layers

            bad = unshardable_layers(model)
            if bad:
                raise StageError(
                    f"cpu_shards={config.cpu_shards} cannot split {config.builder!r}'s batches: "
                    f"{', '.join(bad)} mix the images of a batch; set cpu_shards: 1"
                )
            try:
                model = BatchShards(model, shards)
            except ValueError as err:
                raise StageError(str(err)) from None
        model.compile(
            optimizer=make_optimizer(config, train_cfg),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
            jit_compile=train_cfg.jit_compile,
            steps_per_execution=train_cfg.steps_per_execution,
        )
    return model


def prepare_model(config: ModelParams, train_cfg: TrainParams, seed: int, threads: int):  # type: ignore[no-untyped-def]
    """A model ready to fit: thread pools and batch shards set, everything seeded, the precision
    policy set, built and compiled. Call before TensorFlow starts its runtime."""
    import keras

    require_tensorflow_backend()
    shards = shard_count(config)
    configure_threads(shards, threads)
    seed_everything(seed, op_determinism=not train_cfg.jit_compile)
    if train_cfg.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    return compile_model(config, train_cfg, shards)


def datasets(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, batch: int, eval_batch: int, seed: int
):  # type: ignore[no-untyped-def]
    """In-memory tf.data pipelines of uint8 images: shuffled each epoch (seeded), prefetched.

    The shuffle permutes indices and each batch is gathered in one op, instead of pushing
    45,000 single images through a shuffle buffer every epoch (same permutation, less work
    on the cores that train). tf.data's autotuning is off: on two cores, freeing an
    autotuned iterator at an epoch's end stalled the next epoch for 1-7 s at random;
    a fixed prefetch of two batches does the same job here.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    with tf.device("/CPU:0"):  # host memory, where tf.data runs, also when a GPU is visible
        images, labels = tf.constant(x), tf.constant(y.astype(np.int32))
    train = (
        tf.data.Dataset.range(len(y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
        .prefetch(2)
        .with_options(options)
    )
    val = (
        tf.data.Dataset.from_tensor_slices((x_val, y_val.astype(np.int32)))
        .batch(eval_batch)
        .prefetch(2)
        .with_options(options)
    )
    return train, val


def fit(  # type: ignore[no-untyped-def]
    model,
    config: ModelParams,
    train_cfg: TrainParams,
    train_data: tuple[np.ndarray, np.ndarray],
    val_data: tuple[np.ndarray, np.ndarray],
    seed: int,
    callbacks: list,  # type: ignore[type-arg]
    verbose: int = 0,
    epochs: int | None = None,
):
    """Train on uint8 arrays through the seeded, prefetched in-memory tf.data pipeline."""
    train_ds, val_ds = datasets(*train_data, *val_data, config.batch_size, train_cfg.eval_batch_size, seed)
    return model.fit(
        train_ds,
        validation_data=val_ds,
        shuffle=False,
        epochs=config.epochs if epochs is None else epochs,
        callbacks=callbacks,
        verbose=verbose,
    )


# --- scores -------------------------------------------------------------------------------


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 (scikit-learn)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", labels=list(range(len(CLASSES))), zero_division=0
    )
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "precision": round(float(precision), 6),
        "recall": round(float(recall), 6),
        "f1": round(float(f1), 6),
    }


def count_weights(weights: list) -> int:  # type: ignore[type-arg]
    return int(sum(np.prod(w.shape) for w in weights))


# --- run records --------------------------------------------------------------------------


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
