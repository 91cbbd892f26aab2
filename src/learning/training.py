"""How a model is trained and scored: device, seeding, compiling, the seed-and-epoch data
pipeline and `fit`, and scores; shared by the train stage and the benchmarks.
Details: docs/internals.md#training.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

from src.ground.cli import StageError
from src.ground.data import CLASSES, IMAGE_SHAPE
from src.ground.params import ModelParams, TrainParams
from src.learning.callbacks import epoch_draws
from src.learning.models import build_model
from src.learning.resume import DRAWS_PER_EPOCH, MAX_EPOCHS
from src.learning.speed import configure_threads, fuse_adam, set_op_determinism

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


def _strategy(train: TrainParams) -> Any:
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


def make_optimizer(config: ModelParams, train_cfg: TrainParams) -> Any:
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
    from src.learning.speed.shards import resolve_shards

    try:
        return resolve_shards(config.cpu_shards, config.batch_size)
    except ValueError as err:
        raise StageError(f"{err}; lower cpu_shards") from None


def plain_model(model: Any) -> Any:
    """The Keras model itself, without the batch shards it may train in."""
    from src.learning.speed.shards import BatchShards

    return model.model if isinstance(model, BatchShards) else model


def compile_model(config: ModelParams, train_cfg: TrainParams, shards: int = 1) -> Any:
    """Build a model from the registry and compile it with its recipe (under the distribution strategy).

    With `shards` > 1 the compiled model is the built one wrapped in BatchShards;
    `plain_model` gives back the built one.
    """
    import keras

    with _strategy(train_cfg).scope():
        model = build_model(config.builder, IMAGE_SHAPE, len(CLASSES), **config.builder_kwargs)
        if shards > 1:
            from src.learning.speed.shards import BatchShards, unshardable_layers

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


def prepare_model(config: ModelParams, train_cfg: TrainParams, seed: int, threads: int) -> Any:
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
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    batch: int,
    eval_batch: int,
    seed: int,
    epoch: Any,
) -> tuple[Any, Any]:
    """In-memory tf.data pipelines of uint8 images, prefetched: the training batches in an order
    drawn from the seed and the `epoch` variable (docs/internals.md#resume), and the validation
    batches in their stored order.
    """
    import tensorflow as tf

    # Autotuning off: on two cores, freeing an autotuned iterator at an epoch's end stalled the
    # next epoch for 1-7 s at random; a fixed prefetch of two batches does the same job here.
    options = tf.data.Options()
    options.autotune.enabled = False
    train = _shuffled_batches(x, y, batch, seed, epoch).prefetch(2).with_options(options)
    val = (
        tf.data.Dataset.from_tensor_slices((x_val, y_val.astype(np.int32)))
        .batch(eval_batch)
        .prefetch(2)
        .with_options(options)
    )
    return train, val


def _shuffled_batches(x: np.ndarray, y: np.ndarray, batch: int, seed: int, epoch: Any) -> Any:
    """Batches of the training images, each gathered in one op from indices permuted by a
    stateless function of seed and epoch: epoch k has the same order whether or not the process
    trained epochs 1 to k-1.
    """
    import tensorflow as tf

    with tf.device("/CPU:0"):  # host memory, where tf.data runs, also when a GPU is visible
        images, labels = tf.constant(x), tf.constant(y.astype(np.int32))

    def order(_: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
        indices = tf.random.experimental.stateless_shuffle(tf.range(len(y), dtype=tf.int64), seed=key)
        return tf.data.Dataset.from_tensor_slices(indices)

    batches = -(-len(y) // batch)
    return (
        tf.data.Dataset.range(1)
        .flat_map(order)
        .batch(batch)
        .apply(tf.data.experimental.assert_cardinality(batches))
        .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
    )


def seed_states(model: Any) -> list[Any]:
    """The state variables of the model's random seed generators (dropout, augmentation)."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def build_for_backup(model: Any) -> None:
    """Build the model and the optimizer's variables now (fit would at its first step), so that
    a backup can be loaded into them."""
    if not model.built:
        model.build((None, *IMAGE_SHAPE))
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def fit(
    model: Any,
    config: ModelParams,
    train_cfg: TrainParams,
    train_data: tuple[np.ndarray, np.ndarray],
    val_data: tuple[np.ndarray, np.ndarray],
    seed: int,
    callbacks: list[Any],
    verbose: int = 0,
    epochs: int | None = None,
    initial_epoch: int = 0,
) -> Any:
    """Train on uint8 arrays through the seeded, prefetched in-memory tf.data pipeline, from
    `initial_epoch` (a restored run) on; every epoch's order and draws from seed and epoch."""
    import tensorflow as tf

    epochs = config.epochs if epochs is None else epochs
    if epochs > MAX_EPOCHS:
        raise StageError(f"epochs={epochs}: at most {MAX_EPOCHS} (the seed generators' counters)")
    with tf.device("/CPU:0"):
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds, val_ds = datasets(
        *train_data, *val_data, config.batch_size, train_cfg.eval_batch_size, seed, epoch
    )
    draws = epoch_draws(seed_states(model), epoch, DRAWS_PER_EPOCH)
    return model.fit(
        train_ds,
        validation_data=val_ds,
        shuffle=False,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[draws, *callbacks],
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
