"""Batch shards side by side (src/learning/speed/shards.py): the same computation as the whole
batch at once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from src.ground.cli import StageError  # noqa: E402
from src.ground.params import ModelParams, TrainParams  # noqa: E402
from src.learning.models import build_model  # noqa: E402
from src.learning.speed.shards import BatchShards, check_keras_version, resolve_shards, unshardable_layers  # noqa: E402
from src.learning.training import compile_model, plain_model  # noqa: E402

SMALL = {
    "vgg_style": {"filters": [4, 8], "dense_units": 8, "dropout": 0.5},  # BatchNorm after every conv
    "resnet_cifar": {"depth": 8, "base_filters": 4},  # BatchNorm, skip connections (Add)
    "simple_cnn": {"dense_units": 8},
    "cnn_da_dropout": {"dense_units": 8, "dropout": 0.5},  # random flips and shifts, Dropout
    "mlp_bn": {"units": [16], "dropout": 0.2},
}


@pytest.fixture()
def float64() -> Iterator[None]:
    """Compare in float64, where rounding cannot hide a difference in the math."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # a policy set earlier in the session outlives set_floatx
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


def _step(model, trained: keras.Model, x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Training-mode outputs, loss gradients, and BatchNorm moving statistics and random
    generators' states after one call."""
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, outputs))
    gradients = tape.gradient(loss, trained.trainable_weights)
    return (
        outputs.numpy(),
        [g.numpy() for g in gradients],
        [w.numpy().copy() for w in trained.non_trainable_variables],
    )


@pytest.mark.parametrize("builder", sorted(SMALL))
@pytest.mark.parametrize(("images", "shards"), [(10, 2), (7, 2), (9, 3), (1, 2)])
def test_shards_compute_what_the_whole_batch_computes(
    float64: None, builder: str, images: int, shards: int
) -> None:
    """Outputs, gradients (the whole batch's mean loss), BatchNorm's moving averages (one
    update from the whole batch's statistics) and random draws (the whole batch's Dropout
    masks, flips and shifts; one step of each seed generator) match; also unequal and empty
    shards."""
    keras.utils.set_random_seed(0)
    model = build_model(builder, (32, 32, 3), 10, **SMALL[builder])
    sharded = BatchShards(model, shards)
    rng = np.random.default_rng(images)
    x = rng.integers(0, 256, (images, 32, 32, 3)).astype("uint8")
    y = np.arange(images) % 10
    before = [w.numpy().copy() for w in model.non_trainable_variables]
    whole = _step(model, model, x, y)
    for variable, value in zip(model.non_trainable_variables, before, strict=True):
        variable.assign(value)
    split = _step(sharded, model, x, y)
    np.testing.assert_allclose(split[0], whole[0], rtol=1e-6, atol=1e-7)  # the float32 softmax bounds this
    largest = max(np.abs(g).max() for g in whole[1])
    for a, b in zip(split[1], whole[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * largest)
    for a, b in zip(split[2], whole[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if before:  # BatchNorm statistics and random generators moved on (once: they match the unsplit)
        assert any(not np.array_equal(a, b) for a, b in zip(split[2], before, strict=True))
    np.testing.assert_allclose(sharded(x, training=False), model(x, training=False), rtol=1e-6, atol=1e-7)


def test_shards_draw_the_whole_batchs_random_numbers() -> None:
    """Dropout's mask in shards is the unsplit model's, bit for bit: shard 2 does not repeat
    shard 1's (as replicas sharing one seed would), nor draw its own."""
    inputs = keras.Input((64,), dtype="uint8")
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(keras.layers.Rescaling(1.0)(inputs)))
    state = [v.numpy().copy() for v in model.non_trainable_variables]
    x = np.ones((5, 64), "uint8")
    masks = BatchShards(model, 2)(x, training=True).numpy() > 0
    after_shards = [v.numpy().copy() for v in model.non_trainable_variables]
    for variable, value in zip(model.non_trainable_variables, state, strict=True):
        variable.assign(value)
    np.testing.assert_array_equal(masks, model(x, training=True).numpy() > 0)
    for a, b in zip(after_shards, model.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())  # one draw per batch, as unsplit
    assert not np.array_equal(masks[0], masks[3]) and 0.3 < masks.mean() < 0.7


@pytest.mark.parametrize("shards", [2, 3])
def test_shards_transform_their_images_with_the_whole_batchs_draws(shards: int) -> None:
    """Flips, shifts, zooms and rotations in shards give the unsplit model's pixels, bit for
    bit in float32, with one draw per batch; each shard is transformed on its own (one
    transform op per shard and layer), not the whole batch on one thread."""
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.RandomFlip("horizontal")(x)
    x = keras.layers.RandomTranslation(0.1, 0.1)(x)
    x = keras.layers.RandomZoom(0.2)(x)
    model = keras.Model(inputs, keras.layers.RandomRotation(0.1)(x))
    images = np.random.default_rng(shards).integers(0, 256, (9, 32, 32, 3)).astype("uint8")
    state = [v.numpy().copy() for v in model.non_trainable_variables]
    sharded = BatchShards(model, shards)
    split = sharded(images, training=True).numpy()
    after_shards = [v.numpy().copy() for v in model.non_trainable_variables]
    for variable, value in zip(model.non_trainable_variables, state, strict=True):
        variable.assign(value)
    whole = model(images, training=True).numpy()
    np.testing.assert_array_equal(split, whole)
    assert not np.array_equal(whole, np.flip(whole, axis=2))  # something was transformed
    for a, b in zip(after_shards, model.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())

    graph = (
        tf.function(lambda batch: sharded(batch, training=True))
        .get_concrete_function(tf.TensorSpec((None, 32, 32, 3), tf.uint8))
        .graph
    )
    kinds = [op.type for op in graph.get_operations()]
    assert kinds.count("ImageProjectiveTransformV3") == 3 * shards  # shift, zoom, rotation
    assert kinds.count("ReverseV2") == shards


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_the_loss_of_confidently_wrong_images_keeps_its_gradient(compiled: bool) -> None:
    """Keras takes the crossentropy of a softmax output from its logits; from the
    probabilities, clipped at 1e-7, an image whose true class is that unlikely would
    contribute no gradient. Put together from shards, the output must keep the logits."""
    inputs = keras.Input((2,))
    model = keras.Model(
        inputs, keras.layers.Dense(3, activation="softmax", kernel_initializer="identity")(inputs)
    )
    sharded = BatchShards(model, 2)
    x = np.array([[30.0, 0.0], [0.0, 30.0], [30.0, 0.0], [0.0, 30.0]], "float32")
    y = np.array([1, 0, 0, 1])  # images 0 and 1: true class at probability e^-30, about 1e-13

    def gradients(net):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, net(x, training=True)))
        return loss, tape.gradient(loss, model.trainable_weights)

    if compiled:
        gradients = tf.function(gradients)
    whole_loss, whole = gradients(model)
    split_loss, split = gradients(sharded)
    assert whole_loss.numpy() > 10  # from the logits: about 30 / 2, not -log(1e-7) / 2
    np.testing.assert_allclose(split_loss, whole_loss, rtol=1e-6)
    for a, b in zip(split, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_layers_that_mix_a_batch_are_not_split() -> None:
    inputs = keras.Input((8,))
    x = keras.layers.BatchNormalization(renorm=True, name="renorm_bn")(inputs)
    x = keras.layers.UnitNormalization(name="unit_norm")(x)  # per image, but not on the known list
    model = keras.Model(inputs, x)
    assert unshardable_layers(model) == ["renorm_bn (BatchNormalization)", "unit_norm (UnitNormalization)"]
    with pytest.raises(ValueError, match="cannot be split into batch shards: renorm_bn"):
        BatchShards(model, 2)
    assert unshardable_layers(build_model("vgg_style", (32, 32, 3), 10)) == []


def test_compile_model_wraps_only_when_asked_and_possible(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ModelParams(builder="simple_cnn", display_name="CNN", cpu_shards=2)
    model = compile_model(config, TrainParams(), shards=2)
    assert isinstance(model, BatchShards) and model.shards == 2
    assert plain_model(model) is model.model and plain_model(model).name == "simple_cnn"
    assert not isinstance(compile_model(config, TrainParams(), shards=1), BatchShards)

    import src.learning.speed.shards

    monkeypatch.setattr(src.learning.speed.shards, "_PER_IMAGE_LAYERS", (keras.layers.InputLayer,))
    with pytest.raises(StageError, match=r"cpu_shards=2 cannot split 'simple_cnn'.*set cpu_shards: 1"):
        compile_model(config, TrainParams(), shards=2)


def test_shards_refuse_an_unchecked_keras_release() -> None:
    check_keras_version(keras.__version__)  # the pinned release passes
    with pytest.raises(
        ValueError, match=r"checked against Keras 3.15.x and this is Keras 3.99.0: set cpu_shards: 1"
    ):
        check_keras_version("3.99.0")


def test_resolve_shards_takes_the_param_not_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert resolve_shards(1, 32) == 1
    assert resolve_shards(3, 32) == 3
    with pytest.raises(ValueError, match="cpu_shards=64 is more than the batch size 32"):
        resolve_shards(64, 32)


@pytest.mark.parametrize("builder", ["vgg_style", "cnn_da_dropout"])
def test_training_in_shards_follows_the_unsplit_model(float64: None, builder: str) -> None:
    """Through `fit` with the train stage's settings (fused Adam, 25 steps per call), with
    BatchNorm, Dropout and augmentation: the same losses and weights after two epochs, in
    float64 (in float32, rounding makes long runs drift apart, as with any change of kernels)."""
    from src.learning.training import fit, seed_everything

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 32, 32, 3)).astype("uint8")
    y = rng.integers(0, 10, 200).astype("uint8")
    config = ModelParams(builder=builder, display_name=builder, **SMALL[builder])
    runs = []
    for shards in (1, 2):
        seed_everything(0)
        model = compile_model(config, TrainParams(), shards)
        history = fit(model, config, TrainParams(), (x, y), (x[:40], y[:40]), 0, [], epochs=2).history
        runs.append((history["loss"], plain_model(model).get_weights()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)  # Keras averages the loss in float32
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        # float32 output layer; Adam scales tiny steps up (one weight of 3,136 moved by 5e-7 with
        # the seed-and-epoch data order): a different draw would move them all by far more
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
