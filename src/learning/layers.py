"""Layers and a regularizer whose arithmetic is the same on every CPU maker and thread count:
BatchNorm's inverse standard deviation in float64, the L2 penalty summed in a fixed order.
Details: docs/internals.md#layers.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def inverse_std(variance: Any, epsilon: float) -> Any:
    """1 / sqrt(variance + epsilon) in float64, rounded to variance's dtype: the same on any CPU."""
    dtype = variance.dtype
    return ops.cast(ops.rsqrt(ops.cast(variance + epsilon, "float64")), dtype)


def batch_normalization(
    x: Any, mean: Any, variance: Any, axis: int, offset: Any = None, scale: Any = None, epsilon: float = 1e-3
) -> Any:
    """keras.ops.batch_normalization (tf.nn.batch_normalization's formula) with an exact inverse std."""
    rank = len(x.shape)
    shape = [1] * rank
    shape[axis % rank] = x.shape[axis]
    inv = inverse_std(variance, epsilon)
    if scale is not None:
        inv = inv * scale
    shift = -mean * inv if offset is None else offset - mean * inv
    return x * ops.reshape(inv, shape) + ops.reshape(shift, shape)


@keras.saving.register_keras_serializable(package="cifar10")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization computing the same bytes on Intel and AMD CPUs."""

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if self.renorm or mask is not None:
            raise ValueError("this BatchNormalization supports neither renorm nor masks")
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        inputs = ops.cast(inputs, compute_dtype)
        if training and self.trainable:
            axis = self.axis % len(inputs.shape)
            axes = [i for i in range(len(inputs.shape)) if i != axis]
            mean, variance = ops.moments(inputs, axes, synchronized=self.synchronized)
            moving_mean = ops.cast(self.moving_mean, compute_dtype)
            moving_variance = ops.cast(self.moving_variance, compute_dtype)
            self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean = ops.cast(self.moving_mean, compute_dtype)
            variance = ops.cast(self.moving_variance, compute_dtype)
        gamma = ops.cast(self.gamma, compute_dtype) if self.scale else None
        beta = ops.cast(self.beta, compute_dtype) if self.center else None
        outputs = batch_normalization(inputs, mean, variance, self.axis, beta, gamma, self.epsilon)
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="cifar10")
class L2(keras.regularizers.L2):
    """keras.regularizers.L2 whose sum does not depend on the number of threads."""

    def __call__(self, x: Any) -> Any:
        squares = ops.square(x)
        if len(squares.shape) > 1:
            squares = ops.sum(squares, axis=tuple(range(len(squares.shape) - 1)))
        return ops.cast(self.l2, dtype=x.dtype) * ops.sum(squares)
