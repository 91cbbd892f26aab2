"""Digests of every op the five models run, one by one, on fixed inputs, set up as the train stage
sets TensorFlow up (oneDNN at AVX2, op determinism, the stage's thread pools).

    python -m tests.op_digests [--threads N]   print this machine's digests as JSON (N: 2)
    python -m tests.op_digests --record        rewrite this CPU maker's tests/golden/op_digests-<maker>.json
                                               (2 threads)

Each layer at the models' shapes, forward and gradient, inside a tf.function as `fit` runs it
(TensorFlow's graph optimizer may then pick other kernels than eager mode); the fused Adam
update; and three training steps of each model of params.yaml, built and compiled as the
stage builds them (batch shards included). tests/test_op_digests.py compares them with the
digests recorded on a CPU of the same maker (any thread count, the same bytes) and of the other
maker (only the ops KNOWN_MAKER_DIFFERENCES names may differ), so an op that rounds differently
is named, not just a model that drifts (docs/reproducibility.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from src.learning.speed import configure_tensorflow, configure_threads

GOLDENS = Path(__file__).resolve().parent / "golden"
MAKERS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}
# Ops that round differently on Intel Xeon and AMD EPYC at any thread count (oneDNN picks other
# matmul blocking by CPU). Named here so that any other op that drifts stands out; whether the
# models' runs still agree across makers is tests/test_reproducible.py's question.
KNOWN_MAKER_DIFFERENCES = {
    "Dense 2304->64 relu, batch 32: forward",
    "model simple_cnn: predictions after them",
    "model simple_cnn: three training steps, batch 32 (weights, losses)",
}


def golden(maker: str) -> Path:
    """The digests recorded on a CPU of `maker` ("intel", "amd")."""
    return GOLDENS / f"op_digests-{maker}.json"


def this_maker() -> str | None:
    """ "intel" or "amd" for this CPU; None for any other."""
    from src.learning.speed import cpuinfo_field

    return MAKERS.get(cpuinfo_field("vendor_id") or "")


def digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(np.asarray(array, dtype=np.float32)).tobytes())
    return h.hexdigest()[:16]


def _dense_cases(L: Any, BatchNormalization: Any) -> list[tuple[str, Any, tuple[int, ...]]]:
    """The dense layers of every model, then BatchNormalization on dense and conv activations."""
    cases: list[tuple[str, Any, tuple[int, ...]]] = []
    for n_in, n_out, activation in (
        (3072, 512, None),  # mlp_bn
        (512, 256, None),
        (256, 10, "softmax"),
        (3072, 512, "relu"),  # mlp_l2
        (512, 10, "softmax"),
        (2304, 64, "relu"),  # simple_cnn
        (64, 10, "softmax"),
        (2304, 128, "relu"),  # cnn_da_dropout
        (1152, 128, "relu"),  # vgg_style
        (128, 10, "softmax"),
    ):
        cases.append(
            (f"Dense {n_in}->{n_out} {activation}, batch 32", L.Dense(n_out, activation), (32, n_in))
        )
    for n in (512, 256):
        cases.append((f"BatchNormalization dense {n}, batch 32", BatchNormalization(), (32, n)))
    for hw, c in ((30, 32), (15, 64), (7, 128)):
        cases.append(
            (f"BatchNormalization conv {hw}x{hw}x{c}, batch 16", BatchNormalization(), (16, hw, hw, c))
        )
    return cases


def layer_cases() -> list[tuple[str, Any, tuple[int, ...]]]:
    """(name, layer, input shape) for every layer type of src/learning/models.py at the models' shapes."""
    import keras

    from src.learning.layers import BatchNormalization

    L = keras.layers
    cases = _dense_cases(L, BatchNormalization)
    for hw, cin, cout, padding in (
        (32, 3, 32, "valid"),  # the first conv of every CNN
        (15, 32, 64, "valid"),  # the small CNNs' second
        (30, 32, 32, "same"),  # vgg_style's others
        (15, 32, 64, "same"),
        (15, 64, 64, "same"),
        (7, 64, 128, "same"),
        (7, 128, 128, "same"),
    ):
        layer = L.Conv2D(cout, 3, padding=padding, activation="relu")
        cases.append((f"Conv2D {hw}x{hw}x{cin}->{cout} {padding} relu, batch 16", layer, (16, hw, hw, cin)))
    for hw, c in ((30, 32), (13, 64), (15, 64), (7, 128)):
        cases.append((f"MaxPooling2D {hw}x{hw}x{c}, batch 16", L.MaxPooling2D(2), (16, hw, hw, c)))
    cases.append(("ReLU 32x512", L.ReLU(), (32, 512)))
    cases.append(("Dropout 0.5, 32x128 (seeded)", L.Dropout(0.5, seed=1), (32, 128)))
    cases.append(
        ("RandomFlip horizontal, 16x32x32x3 (seeded)", L.RandomFlip("horizontal", seed=1), (16, 32, 32, 3))
    )
    cases.append(
        ("RandomTranslation 0.1, 16x32x32x3 (seeded)", L.RandomTranslation(0.1, 0.1, seed=1), (16, 32, 32, 3))
    )
    return cases


def layer_digests(rng: np.random.Generator) -> dict[str, str]:
    import tensorflow as tf

    out = {}
    for name, layer, shape in layer_cases():
        inputs = tf.constant((rng.standard_normal(shape) * 3).astype(np.float32))
        layer.build(shape)
        for weight in layer.weights:  # fixed weights, whatever Keras's initialisers draw
            value = rng.standard_normal(weight.shape).astype(np.float32) * 0.05
            weight.assign(value + (1.0 if "gamma" in weight.path or "variance" in weight.path else 0.0))
        upstream = tf.constant(rng.standard_normal(layer.compute_output_shape(shape)).astype(np.float32))

        @tf.function
        def step(inputs: Any, layer: Any = layer, upstream: Any = upstream) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs, training=True)
                loss = tf.reduce_sum(outputs * upstream)
            return outputs, tape.gradient(loss, [inputs, *layer.trainable_weights])

        outputs, gradients = step(inputs)
        out[f"{name}: forward"] = digest(outputs)
        out[f"{name}: gradient"] = digest(*[g for g in gradients if g is not None])
        if any("moving" in weight.path for weight in layer.weights):  # BatchNorm at inference
            out[f"{name}: inference"] = digest(layer(inputs, training=False))
    return out


def optimizer_digests(rng: np.random.Generator) -> dict[str, str]:
    import keras
    import tensorflow as tf

    from src.learning.speed import fuse_adam

    start = rng.standard_normal((3072, 512)).astype(np.float32)
    gradient = rng.standard_normal((3072, 512)).astype(np.float32) * 0.01
    variable = tf.Variable(start)
    optimizer = fuse_adam(keras.optimizers.Adam(0.001))
    for scale in (1.0, 0.5):
        optimizer.apply([tf.constant(gradient * scale)], [variable])
    return {"fused Adam, two steps, 3072x512": digest(variable)}


def model_digests(rng: np.random.Generator) -> dict[str, str]:
    import keras

    from src.ground.params import load_params
    from src.learning.models import BUILDERS
    from src.learning.training import compile_model, shard_count

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml", builders=BUILDERS)
    images = rng.integers(0, 256, (32, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 10, 32)
    out = {}
    for model_id, config in params.models.items():
        keras.utils.set_random_seed(7)
        model = compile_model(config, params.train, shard_count(config))
        losses = [model.train_on_batch(images, labels)[0] for _ in range(3)]
        weights = model.model.get_weights() if hasattr(model, "model") else model.get_weights()
        out[f"model {model_id}: three training steps, batch 32 (weights, losses)"] = digest(*weights, losses)
        out[f"model {model_id}: predictions after them"] = digest(model.predict(images, verbose=0))
    return out


def approximate_op_digests(rng: np.random.Generator) -> dict[str, str]:
    """The ops src/learning/layers.py avoids: CPU estimates refined by a Newton step, CPU-maker specific.
    Recorded to show they differ between makers, not compared by the tests."""
    import tensorflow as tf

    values = tf.constant(rng.random(100_000).astype(np.float32) * 10 + 1e-3)
    return {
        "Rsqrt, float32": digest(tf.math.rsqrt(values)),
        "Reciprocal, float32": digest(tf.math.reciprocal(values)),
    }


def compute(threads: int = 2) -> dict[str, Any]:
    """This machine's digests, TensorFlow set up as the train stage sets it up, with `threads`
    intra-op threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_tensorflow(onednn=True, cpu_isa="avx2")
    configure_threads(1, threads)  # all intra-op threads to each op, so a split by thread shows
    import keras
    import tensorflow as tf

    from src.learning.speed import cpuinfo_field, set_op_determinism

    tf.get_logger().setLevel("ERROR")  # retracing warnings: each case is its own function, on purpose
    set_op_determinism(True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    digests = {**layer_digests(rng), **optimizer_digests(rng), **model_digests(rng)}
    machine = {
        "cpu": cpuinfo_field("model name"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }
    return {"machine": machine, "digests": digests, "not used by the models": approximate_op_digests(rng)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    result = compute(2 if args.record else args.threads)
    maker = this_maker()
    if args.record and maker is None:
        raise SystemExit("only Intel and AMD CPUs have recorded digests")
    if args.record:
        golden(str(maker)).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {golden(str(maker))}")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
