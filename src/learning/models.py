"""The registry of model builders, `build(input_shape, num_classes, **params) -> keras.Model`:
params.yaml's `models.<id>` keys after the recipe are the keyword arguments, checked
against the annotations. Plain Keras on uint8 images, so any backend runs them.
Details: docs/internals.md#models.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

if TYPE_CHECKING:
    import keras

Builder = Callable[..., "keras.Model"]
BUILDERS: dict[str, Builder] = {}

DropoutRate = Annotated[float, Field(ge=0.0, lt=1.0)]
Units = Annotated[int, Field(gt=0)]


def register(builder: Builder) -> Builder:
    """Add a builder to the registry under its function name."""
    BUILDERS[builder.__name__] = builder
    return builder


def _inputs(input_shape: tuple[int, ...]) -> tuple["keras.KerasTensor", "keras.KerasTensor"]:
    from keras import Input, layers

    inputs = Input(shape=tuple(input_shape), dtype="uint8", name="image")
    return inputs, layers.Rescaling(1.0 / 255, name="scale_to_unit")(inputs)


def _classifier(x: "keras.KerasTensor", num_classes: int) -> "keras.KerasTensor":
    from keras import layers

    # float32 output keeps softmax and the loss stable under mixed precision
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)


@register
def mlp_bn(
    input_shape: tuple[int, ...],
    num_classes: int,
    units: list[Units] = [512, 256],  # noqa: B006 - read only
    dropout: DropoutRate = 0.2,
) -> "keras.Model":
    """MLP: Flatten, then per hidden layer Dense -> BatchNorm -> ReLU -> Dropout."""
    from keras import Model, layers

    from src.learning.layers import BatchNormalization

    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    for width in units:
        x = layers.Dense(width)(x)
        x = BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(dropout)(x)
    return Model(inputs, _classifier(x, num_classes), name="mlp_bn")


@register
def mlp_l2(
    input_shape: tuple[int, ...],
    num_classes: int,
    units: Units = 512,
    l2: Annotated[float, Field(ge=0.0)] = 0.001,
    dropout: DropoutRate = 0.2,
) -> "keras.Model":
    """MLP: Flatten -> Dense ReLU with an L2 kernel penalty -> Dropout."""
    from keras import Model, layers

    from src.learning.layers import L2

    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    x = layers.Dense(units, activation="relu", kernel_regularizer=L2(l2))(x)
    x = layers.Dropout(dropout)(x)
    return Model(inputs, _classifier(x, num_classes), name="mlp_l2")


def _small_cnn(x: "keras.KerasTensor") -> "keras.KerasTensor":
    """Two unpadded 3x3 convolutions with ReLU, each followed by a 2x2 max-pool."""
    from keras import layers

    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    return layers.Flatten()(x)


@register
def simple_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    dense_units: Units = 64,
) -> "keras.Model":
    """Conv32 -> MaxPool -> Conv64 -> MaxPool -> Dense ReLU -> softmax."""
    from keras import Model, layers

    inputs, x = _inputs(input_shape)
    x = _small_cnn(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    return Model(inputs, _classifier(x, num_classes), name="simple_cnn")


@register
def cnn_da_dropout(
    input_shape: tuple[int, ...],
    num_classes: int,
    dense_units: Units = 128,
    dropout: DropoutRate = 0.5,
    augment: bool = True,
    flip: bool = True,
    translate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1,
) -> "keras.Model":
    """Simple CNN with a wider Dense layer, Dropout and data augmentation.

    The augmentation layers (random horizontal flip, random shift by up to `translate`
    of the height and width) are Keras preprocessing layers: they act only when the
    model is called with training=True, so evaluation and prediction see the image as is.
    """
    from keras import Model, layers

    inputs, x = _inputs(input_shape)
    if augment and flip:
        x = layers.RandomFlip("horizontal", name="random_flip")(x)
    if augment and translate > 0:
        x = layers.RandomTranslation(translate, translate, name="random_translation")(x)
    x = _small_cnn(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return Model(inputs, _classifier(x, num_classes), name="cnn_da_dropout")


@register
def vgg_style(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: list[Units] = [32, 64, 128],  # noqa: B006 - read only
    dense_units: Units = 128,
    dropout: DropoutRate = 0.5,
) -> "keras.Model":
    """The study's "ResNet": a VGG-style stack that, despite its name, has no skip connections.

    Per entry of `filters`: Conv 3x3 ReLU -> BatchNorm -> Conv 3x3 ReLU -> BatchNorm ->
    MaxPool 2. The very first convolution is unpadded (32 -> 30 pixels), the others keep
    their size. Then Flatten -> Dense ReLU -> Dropout -> softmax.
    """
    from keras import Model, layers

    from src.learning.layers import BatchNormalization

    inputs, x = _inputs(input_shape)
    for block, width in enumerate(filters):
        for conv in range(2):
            padding = "valid" if block == 0 and conv == 0 else "same"
            x = layers.Conv2D(width, 3, padding=padding, activation="relu")(x)
            x = BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return Model(inputs, _classifier(x, num_classes), name="vgg_style")


@register
def resnet_cifar(
    input_shape: tuple[int, ...],
    num_classes: int,
    depth: Annotated[int, Field(ge=8)] = 20,
    base_filters: Units = 16,
) -> "keras.Model":
    """A true residual network: the CIFAR ResNet of He et al. (2016), depth 6n+2.

    A 3x3 conv with BatchNorm and ReLU, then three stages of n basic blocks (two 3x3
    convs with BatchNorm, plus an identity shortcut) at 16, 32 and 64 filters, halving the
    image size at the start of stages two and three with a strided conv and a 1x1
    projection shortcut (option B), then global average pooling and softmax.
    ResNet-20 (n=3) has about 0.27 M parameters.
    """
    from keras import Model, layers

    from src.learning.layers import BatchNormalization

    if (depth - 2) % 6:
        raise ValueError(f"resnet_cifar depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
    blocks_per_stage = (depth - 2) // 6

    def conv_bn(x: "keras.KerasTensor", width: int, strides: int = 1) -> "keras.KerasTensor":
        x = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False)(x)
        return BatchNormalization()(x)

    inputs, x = _inputs(input_shape)
    x = layers.ReLU()(conv_bn(x, base_filters))
    for stage in range(3):
        width = base_filters * 2**stage
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = layers.ReLU()(conv_bn(x, width, strides))
            y = conv_bn(y, width)
            if strides != 1:
                shortcut = layers.Conv2D(width, 1, strides=strides, use_bias=False)(x)
                shortcut = BatchNormalization()(shortcut)
            x = layers.ReLU()(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return Model(inputs, _classifier(x, num_classes), name=f"resnet{depth}")


def build_model(
    builder: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: object
) -> "keras.Model":
    """Build a registered model by builder name."""
    if builder not in BUILDERS:
        raise KeyError(f"unknown builder {builder!r}; registered: {sorted(BUILDERS)}")
    return BUILDERS[builder](input_shape, num_classes, **kwargs)
