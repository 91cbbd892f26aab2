"""The project's BatchNormalization: Keras's arithmetic, with no CPU estimate in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from src.learning.layers import BatchNormalization, inverse_std  # noqa: E402

# TensorFlow ops whose float results start from the CPU's estimate instructions (vrsqrtps,
# vrcpps), which Intel and AMD implement differently; exact in float64.
ESTIMATED = {"Rsqrt", "Reciprocal", "Inv"}
FLOAT64 = tf.float64.as_datatype_enum


def test_the_inverse_std_is_the_correctly_rounded_value_eagerly_and_in_a_graph() -> None:
    variance = (np.random.default_rng(0).random(100_000) * 10).astype(np.float32)
    exact = (1 / np.sqrt((variance + np.float32(1e-3)).astype(np.float64))).astype(np.float32)
    eager = inverse_std(tf.constant(variance), 1e-3).numpy()
    graph = tf.function(lambda v: inverse_std(v, 1e-3))(tf.constant(variance)).numpy()
    assert eager.dtype == np.float32
    np.testing.assert_array_equal(eager, exact)
    np.testing.assert_array_equal(graph, exact)


@pytest.mark.parametrize("shape", [(32, 64), (8, 5, 5, 16)])
def test_it_computes_what_keras_computes_where_keras_rounds_exactly(shape: tuple[int, ...]) -> None:
    """In float64 Keras's Rsqrt is exact too: then outputs, gradients and moving statistics are
    Keras's, bit for bit, in training and at inference."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal(shape) * 3 + 1, dtype=tf.float64)
    upstream = tf.constant(rng.standard_normal(shape), dtype=tf.float64)
    results = []
    for layer_type in (keras.layers.BatchNormalization, BatchNormalization):
        layer = layer_type(dtype="float64", momentum=0.9)
        layer.build(shape)
        layer.gamma.assign(rng.standard_normal(shape[-1:]) if not results else results[0][-1])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        stats = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
        results.append(
            [
                y.numpy(),
                *[g.numpy() for g in grads],
                *stats,
                layer(x, training=False).numpy(),
                layer.gamma.numpy(),
            ]
        )
    for keras_value, ours in zip(*results, strict=True):
        np.testing.assert_array_equal(keras_value, ours)


def _executed_ops(run) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """(op, dtype) of every node TensorFlow executed in `run()`'s functions, after its graph
    optimizer rewrote them (it turns 1 / sqrt(x) into Reciprocal(Sqrt(x)), for one)."""
    from tensorflow.python.eager import context

    ctx = context.context()
    ctx.enable_run_metadata()
    try:
        run()
        metadata = ctx.export_run_metadata()
    finally:
        ctx.disable_run_metadata()
    return {
        (node.op, node.attr["T"].type if "T" in node.attr else 0)
        for function in metadata.function_graphs
        for graph in [function.post_optimization_graph, *function.partition_graphs]
        for node in graph.node
    }


@pytest.mark.slow
def test_no_model_trains_or_predicts_with_a_cpu_estimate() -> None:
    from src.ground.params import load_params
    from src.learning.models import BUILDERS
    from src.learning.training import compile_model, shard_count

    params = load_params(ROOT / "params.yaml", builders=BUILDERS)
    images = np.zeros((32, 32, 32, 3), np.uint8)
    labels = np.zeros(32, np.int64)
    for model_id, config in params.models.items():
        model = compile_model(config, params.train, shard_count(config))
        ops = _executed_ops(lambda model=model: (model.train_on_batch(images, labels), model.predict(images)))
        assert any(op == "Rsqrt" for op, _ in ops) == (model_id in ("mlp_bn", "resnet")), model_id
        estimated = sorted(op for op, dtype in ops if op in ESTIMATED and dtype != FLOAT64)
        assert not estimated, f"{model_id} runs {estimated} in float32: results then depend on the CPU maker"


def test_a_saved_model_loads_back_with_this_layer(tmp_path: Path) -> None:
    from src.learning.model_file import load_model, save_model
    from src.learning.models import build_model

    model = build_model("mlp_bn", (32, 32, 3), 10, units=[8])
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert [type(layer) for layer in loaded.layers if "batch" in layer.name] == [BatchNormalization]
