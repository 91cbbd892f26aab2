"""Stage `train@<id>-<seed>`: train one model of params.yaml's `models` with one of its
`seeds`, then evaluate it on test.

`python -m src.train <id> --seed <seed>` builds the model from the registry in src/models.py,
trains it with that model's recipe on the prepared train split (validating on the val split
every epoch, logged with DVCLive), and writes:

- `models/<id>-<seed>.keras`: the trained model (it takes raw uint8 images), saved under a
  temporary name and renamed, so it is never half-written;
- `reports/train/<id>-<seed>/`: DVCLive's per-epoch curves, `metrics.json` with the test
  scores and parameter counts, the test predictions (`predictions.csv`), and `run.json`
  (written last, atomically) with the training time, the thread pools, kernels and
  environment (library versions, CPU flags, GPU) the run used. DVCLive writes as training
  goes; DVC records the stage only once it has finished, and reruns it from scratch after an
  interruption.

Everything is seeded and, unless `train.jit_compile` is on, TensorFlow's ops are
deterministic; the batch split (`cpu_shards`), the thread pools (`train.threads`) and the CPU
kernels' instruction set (`train.cpu_isa`) come from params.yaml, never from the machine. So
the same code, params, data and library versions give the same bytes on any x86-64 CPU with
AVX2, whatever its core count (tests/test_reproducible.py); GPUs compute otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import resource
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from src.cli import StageError, run_stage
from src.data import CLASSES, IMAGE_SHAPE, load_split
from src.files import atomic_write, write_json, write_text
from src.models import BUILDERS, build_model
from src.params import ModelParams, Params, TrainParams, load_params
from src.paths import live_dir, model_path, predictions_path

log = logging.getLogger(__name__)


def model_config(params: Params, model_id: str) -> ModelParams:
    if model_id not in params.models:
        raise StageError(f"unknown model id {model_id!r}: params.yaml's models has {sorted(params.models)}")
    return params.models[model_id]


def _check_batch(config: ModelParams, model_id: str, n_train: int) -> None:
    if config.batch_size > n_train:
        raise StageError(
            f"models.{model_id}.batch_size={config.batch_size} is larger than the {n_train:,} "
            "training images: lower it or raise prepare.max_images_per_split"
        )


def seed_everything(seed: int, op_determinism: bool = True) -> None:
    """Seed Python, NumPy and the Keras backend; optionally make TensorFlow's ops deterministic.

    TensorFlow refuses XLA together with op determinism (MaxPool gradients have no
    deterministic XLA kernel) and Keras silently drops `jit_compile` when determinism is on,
    so XLA runs rely on XLA's CPU code being deterministic by itself (the tests check both).
    """
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config  # no public switch back off

        if op_determinism:
            tf.config.experimental.enable_op_determinism()
        else:  # the setting is process-wide: undo an earlier call in this process
            tf_config.disable_op_determinism()


def _strategy(train: TrainParams):  # type: ignore[no-untyped-def]
    """One device, or MirroredStrategy over all visible GPUs (TensorFlow backend only)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        if train.strategy == "mirrored":
            raise StageError("train.strategy=mirrored needs the TensorFlow backend")
        return None
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if train.strategy == "mirrored" or (train.strategy == "auto" and len(gpus) > 1):
        strategy = tf.distribute.MirroredStrategy()
        log.info("MirroredStrategy over %d replicas", strategy.num_replicas_in_sync)
        return strategy
    return tf.distribute.get_strategy()


ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
PORTABLE_ISA = "AVX2"


def configure_tensorflow(train_cfg: TrainParams) -> None:
    """Choose TensorFlow's CPU kernels before TensorFlow is imported (it reads the choice once).

    `train.onednn`: TensorFlow turns its oneDNN kernels on by default only on CPUs with
    AVX-512 or AMX; on AVX2 CPUs they train these models faster than the default Eigen
    kernels (1.2x for simple_cnn, up to 2x for the VGG-style net). They round differently
    from Eigen, so scores move slightly, but reruns stay bit-identical.

    `train.cpu_isa`: oneDNN picks its kernels by the CPU's instruction set, and kernels for
    different instruction sets round differently: with the same code, params and data,
    mlp_l2 scored 0.3844 on an AVX-512 CPU and 0.3607 on an AVX2 one. `avx2` caps oneDNN at
    AVX2 (ONEDNN_MAX_CPU_ISA), which x86-64 CPUs of the last decade have, so every such CPU
    computes the same bytes; `native` lets it use everything the CPU has (on a 2-core AVX-512
    machine mlp_l2 trained in 84 s instead of 103 s, simple_cnn equally fast), and results
    then depend on the CPU. `cpu_isa_record` says what a run used.
    """
    if "tensorflow" in sys.modules:
        isa_differs = os.environ.get(ONEDNN_ISA_VARIABLE) != _isa_setting(train_cfg)
        if onednn_enabled() != train_cfg.onednn or isa_differs:
            log.warning("TensorFlow was imported before train.onednn / train.cpu_isa could take effect")
        return
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if train_cfg.onednn else "0"
    isa = _isa_setting(train_cfg)
    if isa is None:
        os.environ.pop(ONEDNN_ISA_VARIABLE, None)
    else:
        os.environ[ONEDNN_ISA_VARIABLE] = isa


def _isa_setting(train_cfg: TrainParams) -> str | None:
    return PORTABLE_ISA if train_cfg.cpu_isa == "avx2" else None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_isa_record(train_cfg: TrainParams, flags: set[str] | None = None) -> dict[str, Any]:
    """What decided the CPU kernels' arithmetic in this run, for run.json.

    `kernels_isa` is the instruction set oneDNN's kernels were limited to: "AVX2" wherever the
    cap applied and the CPU has AVX2 (then the bytes match any other such CPU), "native" (the
    CPU's best, which the CPU flags tell), or "below AVX2" on an older CPU, whose results
    differ from the recorded run's.
    """
    flags = cpu_flags() if flags is None else flags
    known = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    if train_cfg.cpu_isa == "native":
        kernels = "native"
    elif flags and "avx2" not in flags:
        kernels = "below AVX2"
    else:
        kernels = PORTABLE_ISA
    return {
        "cpu_isa": train_cfg.cpu_isa,
        "kernels_isa": kernels,
        "onednn_max_cpu_isa": os.environ.get(ONEDNN_ISA_VARIABLE),
        "cpu_flags": sorted(flag for flag in known if flag in flags),
    }


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs its oneDNN CPU kernels."""
    from tensorflow.python.util import _pywrap_util_port  # no public query exists

    return bool(_pywrap_util_port.IsMklEnabled())


def _fused_adam_step(self, gradient, variable, learning_rate):  # type: ignore[no-untyped-def]
    """keras.optimizers.Adam's update as TensorFlow's fused kernel: one op per weight, not eight.

    The same rule (lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); m, v moving averages;
    w -= lr_t * m / (sqrt(v) + eps)); only the rounding order differs.
    """
    import tensorflow as tf

    def handle(var):  # type: ignore[no-untyped-def]
        return var.handle if hasattr(var, "handle") else var.value.handle

    dtype = variable.dtype
    index = self._get_variable_index(variable)
    step = tf.cast(self.iterations + 1, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=handle(variable),
        m=handle(self._momentums[index]),
        v=handle(self._velocities[index]),
        beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
        beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype),
        beta1=tf.cast(self.beta_1, dtype),
        beta2=tf.cast(self.beta_2, dtype),
        epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )


def fuses_adam(config: ModelParams, train_cfg: TrainParams) -> bool:
    """Whether this model's Adam runs as the fused kernel (TensorFlow backend only)."""
    import keras

    on_tensorflow = keras.backend.backend() == "tensorflow"
    return train_cfg.fused_optimizer and config.optimizer == "adam" and on_tensorflow


def _optimizer(config: ModelParams, train_cfg: TrainParams):  # type: ignore[no-untyped-def]
    import types

    import keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    optimizer = optimizers[config.optimizer](learning_rate=config.learning_rate)
    if fuses_adam(config, train_cfg):
        # bound to this instance, so a saved model still names plain Adam and loads anywhere
        optimizer.update_step = types.MethodType(_fused_adam_step, optimizer)
    return optimizer


def _datasets(
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


def environment() -> dict[str, Any]:
    """Library versions and hardware of this run, recorded beside its metrics."""
    import keras

    versions = {}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "dvc", "dvclive", "numpy", "scikit-learn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus: list[str] = []
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            gpus.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "versions": versions,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "device": "GPU" if gpus else "CPU",
    }


def thread_counts() -> dict[str, int]:
    """TensorFlow's intra-op and inter-op thread pools as this run set them (0: TensorFlow's default)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return {}
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def peak_rss_mib() -> int:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))  # bytes on macOS, KiB elsewhere


def _count(weights: list) -> int:  # type: ignore[type-arg]
    return int(sum(np.prod(w.shape) for w in weights))


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


def predictions_csv(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """The test predictions as CSV, one row per test image in test-set order: actual,predicted
    class names (what DVC's confusion-matrix template reads; about 170 KB for 10,000 images)."""
    names = np.asarray(CLASSES)
    rows = [f"{actual},{predicted}" for actual, predicted in zip(names[y_true], names[y_pred], strict=True)]
    return "actual,predicted\n" + "\n".join(rows) + "\n"


def setup_cpu_threads(config: ModelParams, train_cfg: TrainParams, model_id: str) -> int:
    """Size TensorFlow's thread pools from params.yaml, never from the machine's core count.

    A kernel may split one sum across its threads, so the thread count can be part of the
    arithmetic: `train.threads` fixes it (the intra-op pool, shared by the shards), and the
    model's `cpu_shards` fixes how each batch is split (src/shards.py). Call before
    TensorFlow starts its runtime (before any model or tensor is made); returns the shards.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return 1
    from src.shards import configure_threads, resolve_shards

    try:
        shards = resolve_shards(config.cpu_shards, config.batch_size)
    except ValueError as err:
        raise StageError(f"models.{model_id}: {err}; lower cpu_shards") from None
    configure_threads(shards, train_cfg.threads)
    return shards


def plain_model(model):  # type: ignore[no-untyped-def]
    """The Keras model itself, without the batch shards it may train in."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from src.shards import BatchShards

        if isinstance(model, BatchShards):
            return model.model
    return model


def compile_model(config: ModelParams, train_cfg: TrainParams, shards: int = 1):  # type: ignore[no-untyped-def]
    """Build a model from the registry and compile it with its recipe (under the distribution strategy).

    With `shards` > 1 (from `setup_cpu_threads`), the compiled model is the built one wrapped
    in src.shards.BatchShards; `plain_model` gives back the built one.
    """
    import keras

    strategy = _strategy(train_cfg)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(config.builder, IMAGE_SHAPE, len(CLASSES), **config.builder_kwargs)
        if shards > 1:
            from src.shards import BatchShards, unshardable_layers

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
            optimizer=_optimizer(config, train_cfg),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
            jit_compile=train_cfg.jit_compile,
            steps_per_execution=train_cfg.steps_per_execution,
        )
    return model


def prepare_model(config: ModelParams, train_cfg: TrainParams, model_id: str, seed: int):  # type: ignore[no-untyped-def]
    """The train stage's model, ready to fit: batch shards and threads set up, everything seeded,
    the precision policy set, built and compiled. Call before TensorFlow starts its runtime."""
    import keras

    shards = setup_cpu_threads(config, train_cfg, model_id)
    seed_everything(seed, op_determinism=not train_cfg.jit_compile)
    if train_cfg.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    return compile_model(config, train_cfg, shards)


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
    """Train on uint8 arrays: a seeded, prefetched in-memory tf.data pipeline on TensorFlow."""
    import keras

    epochs = config.epochs if epochs is None else epochs
    if keras.backend.backend() == "tensorflow":
        train_ds, val_ds = _datasets(
            *train_data, *val_data, config.batch_size, train_cfg.eval_batch_size, seed
        )
        return model.fit(
            train_ds,
            validation_data=val_ds,
            shuffle=False,
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
        )
    return model.fit(
        *train_data,
        batch_size=config.batch_size,
        epochs=epochs,
        validation_data=val_data,
        validation_batch_size=train_cfg.eval_batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )


def train(model_id: str, params: Params, seed: int | None = None) -> dict[str, Any]:
    """Train and evaluate one model with one seed (default: the first of params.yaml's
    `seeds`); write its model file and reports. Returns its metrics."""
    config = model_config(params, model_id)
    seed = params.seeds[0] if seed is None else seed
    x_train, y_train = load_split("train")
    x_val, y_val = load_split("val")
    x_test, y_test = load_split("test")
    _check_batch(config, model_id, len(y_train))
    train_cfg = params.train

    import keras
    from dvclive import Live

    model = prepare_model(config, train_cfg, model_id, seed)
    net = plain_model(model)
    if train_cfg.jit_compile and not model.jit_compile:
        log.info("%s: XLA is not available for this model's layers; training without it", model_id)
    out_dir = live_dir(model_id, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    interactive = sys.stdout.isatty()
    log.info(
        "training %s (%s, %s parameters, seed %d) on %s images, validating on %s, %d epochs of batch %d%s",
        model_id,
        config.builder,
        f"{net.count_params():,}",
        seed,
        f"{len(y_train):,}",
        f"{len(y_val):,}",
        config.epochs,
        config.batch_size,
        f" in {model.shards} shards side by side" if net is not model else "",
    )
    with Live(str(out_dir), dvcyaml=None, save_dvc_exp=False) as live:
        live.log_params({"model_id": model_id, "seed": seed, **config.model_dump()})
        with _ctrl_c_recorded() as ctrl_c:
            callbacks = [_stop_on_ctrl_c(ctrl_c), _dvclive_callback(live)]
            if not interactive:
                callbacks.append(_epoch_line_callback(config.epochs))
            verbose = 1 if interactive else 0  # a terminal gets Keras's progress bar
            started = time.perf_counter()
            fit(model, config, train_cfg, (x_train, y_train), (x_val, y_val), seed, callbacks, verbose)
            train_seconds = time.perf_counter() - started

        probabilities = model.predict(x_test, batch_size=train_cfg.eval_batch_size, verbose=0)
        y_pred = np.argmax(probabilities, axis=1)
        metrics = {
            **scores(y_test, y_pred),
            "param_count": int(net.count_params()),
            "trainable_params": _count(net.trainable_weights),
            "non_trainable_params": _count(net.non_trainable_weights),
            "epochs": config.epochs,
        }
        for key, value in metrics.items():
            live.log_metric(f"test/{key}", value, plot=False)
        write_text(predictions_path(model_id, seed), predictions_csv(y_test, y_pred))

        atomic_write(model_path(model_id, seed), net.save)
    run = {
        "model_id": model_id,
        "seed": seed,
        "train_seconds": round(train_seconds, 2),
        "train_images_per_second": round(config.epochs * len(y_train) / train_seconds, 1),
        "peak_rss_mib": peak_rss_mib(),
        "xla": bool(model.jit_compile),
        "onednn": keras.backend.backend() == "tensorflow" and onednn_enabled(),
        "fused_optimizer": fuses_adam(config, train_cfg),
        "cpu_shards": model.shards if net is not model else 1,
        "threads": thread_counts(),
        "cpu_isa": cpu_isa_record(train_cfg),
        "environment": environment(),
    }
    write_json(out_dir / "run.json", run)
    log.info(
        "%s: test accuracy %.4f, macro F1 %.4f, %.0f s of training",
        model_id,
        metrics["accuracy"],
        metrics["f1"],
        train_seconds,
    )
    return metrics


@contextlib.contextmanager
def _ctrl_c_recorded():  # type: ignore[no-untyped-def]
    """Record Ctrl-C while training, besides raising KeyboardInterrupt as usual.

    Under load we saw training go on after Ctrl-C: a KeyboardInterrupt raised while
    TensorFlow's native code runs can get lost there. The record lets a callback raise it
    again at the next batch.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_on_ctrl_c(received: list[int]):  # type: ignore[no-untyped-def]
    import keras

    class StopOnCtrlC(keras.callbacks.Callback):
        def _check(self, *args: object, **kwargs: object) -> None:
            if received:
                raise KeyboardInterrupt

        on_train_batch_end = on_test_batch_end = on_epoch_end = _check

    return StopOnCtrlC()


def _epoch_line_callback(epochs: int, file: Any = None):  # type: ignore[no-untyped-def]
    """One plain line per epoch for logs (CI, `dvc repro > log`): no progress bar, no control characters."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            values = "  ".join(f"{key} {float(value):.4f}" for key, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{epochs}  {values}  ({seconds:.1f} s)", file=file, flush=True)

    return EpochLine()


def _dvclive_callback(live):  # type: ignore[no-untyped-def]
    import keras

    if keras.backend.backend() == "tensorflow":
        from dvclive.keras import DVCLiveCallback

        return DVCLiveCallback(live=live)
    # DVCLive's own callback subclasses tf.keras; on JAX or PyTorch log the same keys by hand
    from dvclive.utils import standardize_metric_name

    class PortableDVCLiveCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for metric, value in (logs or {}).items():
                live.log_metric(standardize_metric_name(metric, "dvclive.keras"), float(value))
            live.next_step()

    return PortableDVCLiveCallback()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Train and evaluate one model of params.yaml (stage train@<id>-<seed>)."
    )
    parser.add_argument("model_id", help="a key of params.yaml's models")
    parser.add_argument("--seed", type=int, help="the run's seed (default: the first of params.yaml's seeds)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    params = load_params(builders=BUILDERS)
    configure_tensorflow(params.train)
    train(args.model_id, params, args.seed)


if __name__ == "__main__":
    run_stage(main)
