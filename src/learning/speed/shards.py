"""Data parallelism across CPU cores: each batch split into shards trained side by side, with the
whole batch's loss, gradients, BatchNorm statistics and random draws (`cpu_shards`).
Details: docs/internals.md#batch-shards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from keras.src.models.functional import (
    operation_fn as _with_call_context,  # what Functional.call uses
)

from src.learning.layers import batch_normalization

log = logging.getLogger(__name__)

# This module runs Keras's functional graph walk and reads Keras internals (call context, cached
# logits, seed generators). It was checked (tests/test_speed_shards.py, float64) against these
# Keras releases only, and elsewhere refuses to run rather than risk a silent gradient error.
CHECKED_KERAS = ("3.15.",)


def check_keras_version(version: str = keras.__version__) -> None:
    """Raise ValueError, naming the fix, unless Keras is a release these shards were checked on."""
    if not version.startswith(CHECKED_KERAS):
        checked = ", ".join(f"{release}x" for release in CHECKED_KERAS)
        raise ValueError(
            f"batch shards (src/learning/speed/shards.py) were checked against Keras {checked} and this "
            f"is Keras {version}: set cpu_shards: 1, or install the version of requirements.lock"
        )


# Layers that compute each image on its own (or, BatchNormalization, that are synchronized
# here), so that running them on shards of a batch computes the same as on the whole batch.
_PER_IMAGE_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Rescaling,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Multiply,
    keras.layers.LayerNormalization,
    keras.layers.RandomFlip,
    keras.layers.RandomTranslation,
    keras.layers.RandomRotation,
    keras.layers.RandomZoom,
    keras.layers.BatchNormalization,
)


def resolve_shards(setting: int, batch_size: int) -> int:
    """How many shards to split each batch into: `setting` from params.yaml, 1 where it cannot help.

    1 with a visible GPU or another Keras backend. Never derived from the machine's core
    count: the split is part of the arithmetic (the order of the gradient sums), so it is
    a recorded parameter. Must run before TensorFlow starts its runtime (listing the
    physical GPUs does not start it).
    """
    if keras.backend.backend() != "tensorflow" or tf.config.list_physical_devices("GPU"):
        return 1
    if setting > batch_size:
        raise ValueError(f"cpu_shards={setting} is more than the batch size {batch_size}")
    return setting


def unshardable_layers(model: keras.Model) -> list[str]:
    """Names of the layers that would compute differently on shards of a batch."""
    bad = []
    for layer in model.layers:
        per_image = isinstance(layer, _PER_IMAGE_LAYERS)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.renorm:
            per_image = False
        if not per_image:
            bad.append(f"{layer.name} ({type(layer).__name__})")
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        bad.append(f"{model.name} (not a functional model)")
    return bad


class _Shards:
    """The per-shard values of one tensor of the model's graph (a leaf to keras.tree)."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts


def _shard_index(index: int) -> Any:
    return lambda value: value.parts[index] if isinstance(value, _Shards) else value


def _synchronized_batch_norm(
    layer: keras.layers.BatchNormalization, parts: list[tf.Tensor]
) -> list[tf.Tensor]:
    """keras.layers.BatchNormalization's training step with the statistics of all shards together.

    The same formulas as the layer's (tf.nn.moments: the mean, then the mean squared
    distance from it; the moving-average update, once per batch; src/learning/layers.py's
    normalisation), with sums over the shards in place of means over one batch.
    """
    dtype = keras.backend.result_type(parts[0].dtype, "float32")
    parts = [tf.cast(part, dtype) for part in parts]
    axis = layer.axis if layer.axis >= 0 else len(parts[0].shape) + layer.axis
    axes = [i for i in range(len(parts[0].shape)) if i != axis]
    count = tf.add_n([tf.cast(tf.size(part) // tf.shape(part)[axis], dtype) for part in parts])
    mean = tf.add_n([tf.reduce_sum(part, axes) for part in parts]) / count
    centered = tf.stop_gradient(mean)  # as tf.nn.moments: the gradient through this is zero anyway
    variance = (
        tf.add_n([tf.reduce_sum(tf.math.squared_difference(part, centered), axes) for part in parts]) / count
    )

    momentum = layer.momentum
    moving_mean = tf.cast(layer.moving_mean, dtype)
    moving_variance = tf.cast(layer.moving_variance, dtype)
    layer.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(moving_variance * momentum + variance * (1.0 - momentum))

    gamma = tf.cast(layer.gamma, dtype) if layer.scale else None
    beta = tf.cast(layer.beta, dtype) if layer.center else None
    outputs = []
    for part in parts:
        normalized = batch_normalization(
            part, mean, variance, axis=layer.axis, offset=beta, scale=gamma, epsilon=layer.epsilon
        )
        outputs.append(tf.cast(normalized, layer.compute_dtype))
    return outputs


def _draws_random_numbers(operation: Any) -> bool:
    """Whether the layer draws from a Keras seed generator (Dropout, the Random* layers)."""
    return bool(getattr(operation, "_seed_generators", None))


# Random image layers whose draws are one value per image: their transformation's entries that
# hold those values. Drawn once for the whole batch, then each shard is transformed with its own
# images' slice, on its own thread: the same numbers and pixels as unsplit, computed side by side.
_PER_IMAGE_DRAWS: dict[type, tuple[str, ...]] = {
    keras.layers.RandomFlip: ("flips",),
    keras.layers.RandomTranslation: ("translations",),
    keras.layers.RandomZoom: ("height_zoom", "width_zoom"),
    keras.layers.RandomRotation: ("angle", "rotation_matrix"),
}


def _sizes(parts: list[tf.Tensor]) -> tf.Tensor:
    """The shards' image counts, to split a whole-batch tensor the way the batch was split."""
    return tf.stack([tf.shape(part)[0] for part in parts])


def _drawn_for_the_batch(layer: Any, keys: tuple[str, ...], images: _Shards) -> _Shards:
    """A random image layer's draws for the whole batch, each shard transformed with its slice."""
    sizes = _sizes(images.parts)
    transformation = layer.get_random_transformation(tf.concat(images.parts, axis=0), training=True)
    slices = {key: tf.split(transformation[key], sizes, num=len(images.parts)) for key in keys}
    outputs = []
    for index, part in enumerate(images.parts):
        own = {**transformation, **{key: slices[key][index] for key in keys}}
        if "input_shape" in own:
            own["input_shape"] = layer.backend.shape(part)
        outputs.append(layer.transform_images(part, own, training=True))
    return _Shards(outputs)


def _on_the_whole_batch(call: Any, args: Any, kwargs: Any, parts: list[tf.Tensor]) -> _Shards:
    """Runs `call` once on the shards put back together and splits its output the same way."""

    def whole(value: Any) -> Any:
        return tf.concat(value.parts, axis=0) if isinstance(value, _Shards) else value

    outputs = call(*keras.tree.map_structure(whole, args), **keras.tree.map_structure(whole, kwargs))
    return _Shards(tf.split(outputs, _sizes(parts), num=len(parts)))


def _run_on_shards(operation: Any, training: bool | None) -> Callable[..., _Shards]:
    call = _with_call_context(operation, training=training)

    def run(*args: Any, **kwargs: Any) -> _Shards:
        leaves = [leaf for leaf in keras.tree.flatten((args, kwargs)) if isinstance(leaf, _Shards)]
        count = len(leaves[0].parts)
        synchronize = (
            isinstance(operation, keras.layers.BatchNormalization) and training and operation.trainable
        )
        if synchronize:
            return _Shards(_synchronized_batch_norm(operation, args[0].parts))
        if training and _draws_random_numbers(operation):
            # One draw for the whole batch: the unsplit model's random numbers, and one step
            # of the layer's seed generator per batch, as unsplit.
            keys = _PER_IMAGE_DRAWS.get(type(operation), ())  # the exact type: a subclass may draw otherwise
            plain_call = set(kwargs) <= {"training"} and kwargs.get("training") is not False
            if keys and plain_call and len(args) == 1 and isinstance(args[0], _Shards):
                return _drawn_for_the_batch(operation, keys, args[0])
            return _on_the_whole_batch(call, args, kwargs, leaves[0].parts)
        outputs = []
        for index in range(count):
            pick = _shard_index(index)
            outputs.append(
                call(*keras.tree.map_structure(pick, args), **keras.tree.map_structure(pick, kwargs))
            )
        return _Shards(outputs)

    return run


def _logits_of(output: tf.Tensor) -> tf.Tensor | None:
    """The logits behind a softmax or sigmoid output, found the way Keras's losses find them."""
    logits = getattr(output, "_keras_logits", None)
    symbolic = not isinstance(output, tf.__internal__.EagerTensor) and hasattr(output, "op")
    if logits is None and symbolic and output.op.type in ("Softmax", "Sigmoid"):
        logits = output.op.inputs[0]
    return logits


def _with_logits(output: tf.Tensor, parts: list[tf.Tensor]) -> tf.Tensor:
    """Keeps Keras's crossentropy on the logits when the output is put together from shards.

    Keras computes the loss of a softmax (or sigmoid) output from the logits it caches on the
    output tensor, exactly; without them, from the probabilities clipped to [1e-7, 1 - 1e-7],
    which drops the gradient of every image whose true class has a probability under 1e-7.
    The concatenated shards would lose them.
    """
    logits = [_logits_of(part) for part in parts]
    if all(part_logits is not None for part_logits in logits):
        # A tensor type that takes no attributes: Keras could not have cached them either.
        with contextlib.suppress(AttributeError):
            output._keras_logits = tf.concat(logits, axis=0)
    return output


class BatchShards(keras.Model):
    """Trains and runs `model` (a functional model) on `shards` slices of each batch side by side.

    Its weights are `model`'s; save `model` itself (`.model`), which stays a plain Keras
    model. Shard sizes differ by at most one image; a batch smaller than `shards` leaves
    some shards empty, which the layers above handle.
    """

    def __init__(self, model: keras.Model, shards: int, **kwargs: Any) -> None:
        check_keras_version()
        super().__init__(name=f"{model.name}_in_{shards}_shards", **kwargs)
        bad = unshardable_layers(model)
        if bad:
            raise ValueError(f"{model.name} cannot be split into batch shards: {', '.join(bad)}")
        self.model = model
        self.shards = shards

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        inputs = tf.convert_to_tensor(inputs, dtype=self.model.inputs[0].dtype)
        size = tf.shape(inputs)[0]
        sizes = tf.stack([(size + index) // self.shards for index in range(self.shards)])
        parts = tf.split(inputs, sizes, num=self.shards)
        outputs = self.model._run_through_graph(  # the graph walk of Functional.call, per shard
            [_Shards(parts)], operation_fn=lambda operation: _run_on_shards(operation, training)
        )
        return _with_logits(tf.concat(outputs.parts, axis=0), outputs.parts)
