"""The model registry: each builder matches the study's architecture exactly."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from src.ground.params import load_params
from src.learning.models import BUILDERS, build_model
from tests.conftest import ROOT

keras = pytest.importorskip("keras")

# (total, trainable, non-trainable) parameters, from the study's table
STUDY_PARAMS = {
    "mlp_bn": (1_710_346, 1_708_810, 1_536),
    "mlp_l2": (1_578_506, 1_578_506, 0),
    "simple_cnn": (167_562, 167_562, 0),
    "cnn_da_dropout": (315_722, 315_722, 0),
    "resnet": (437_674, 436_778, 896),
}

# The layer sequence after the input and the uint8 -> [0, 1] scaling layer.
STUDY_LAYERS = {
    "mlp_bn": [
        "Flatten",
        "Dense",
        "BatchNormalization",
        "ReLU",
        "Dropout",
        "Dense",
        "BatchNormalization",
        "ReLU",
        "Dropout",
        "Dense",
    ],
    "mlp_l2": ["Flatten", "Dense", "Dropout", "Dense"],
    "simple_cnn": ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
    "cnn_da_dropout": [
        "RandomFlip",
        "RandomTranslation",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ],
    "resnet": [
        "Conv2D",
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ],
}


def _count(weights: list) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


@pytest.fixture(scope="module")
def study_models() -> dict:
    params = load_params(ROOT / "params.yaml")
    return {
        model_id: build_model(config.builder, (32, 32, 3), 10, **config.builder_kwargs)
        for model_id, config in params.models.items()
    }


@pytest.mark.parametrize("model_id", list(STUDY_PARAMS))
def test_parameter_counts_match_the_study(study_models: dict, model_id: str) -> None:
    model = study_models[model_id]
    counts = (model.count_params(), _count(model.trainable_weights), _count(model.non_trainable_weights))
    assert counts == STUDY_PARAMS[model_id]


@pytest.mark.parametrize("model_id", list(STUDY_LAYERS))
def test_layer_sequence_matches_the_study(study_models: dict, model_id: str) -> None:
    layers = [type(layer).__name__ for layer in study_models[model_id].layers]
    assert layers[:2] == ["InputLayer", "Rescaling"]
    assert layers[2:] == STUDY_LAYERS[model_id]


def test_study_details(study_models: dict) -> None:
    # relu activations, unpadded first convs, L2 factor, softmax output, dropout rates
    resnet = [layer for layer in study_models["resnet"].layers if type(layer).__name__ == "Conv2D"]
    assert [layer.padding for layer in resnet] == ["valid"] + ["same"] * 5
    assert all(layer.activation.__name__ == "relu" for layer in resnet)
    simple = [layer for layer in study_models["simple_cnn"].layers if type(layer).__name__ == "Conv2D"]
    assert [layer.padding for layer in simple] == ["valid", "valid"]
    l2_dense = study_models["mlp_l2"].layers[3]
    assert float(l2_dense.kernel_regularizer.l2) == pytest.approx(0.001)
    dropouts = {mid: [layer.rate for layer in m.layers if type(layer).__name__ == "Dropout"]
                for mid, m in study_models.items()}  # fmt: skip
    assert dropouts == {"mlp_bn": [0.2, 0.2], "mlp_l2": [0.2], "simple_cnn": [],
                        "cnn_da_dropout": [0.5], "resnet": [0.5]}  # fmt: skip
    for model in study_models.values():
        assert model.layers[-1].activation.__name__ == "softmax"
        assert model.input.dtype == "uint8"


def test_scaling_layer_maps_uint8_to_unit_range() -> None:
    model = build_model("mlp_l2", (32, 32, 3), 10)
    scaled = model.get_layer("scale_to_unit")(np.full((1, 32, 32, 3), 255, np.uint8))
    assert float(np.max(keras.ops.convert_to_numpy(scaled))) == pytest.approx(1.0)


def test_augmentation_runs_only_in_training() -> None:
    keras.utils.set_random_seed(0)
    model = build_model("cnn_da_dropout", (32, 32, 3), 10)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    first = keras.ops.convert_to_numpy(model(images, training=False))
    second = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, model.predict(images, verbose=0))

    augment = keras.Sequential([model.get_layer("random_flip"), model.get_layer("random_translation")])
    scaled = images.astype("float32") / 255
    batches = [keras.ops.convert_to_numpy(augment(scaled, training=True)) for _ in range(2)]
    assert not np.allclose(batches[0], scaled)
    assert not np.allclose(batches[0], batches[1])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment(scaled, training=False)), scaled)


def test_augmentation_can_be_switched_off() -> None:
    model = build_model("cnn_da_dropout", (32, 32, 3), 10, augment=False)
    names = [type(layer).__name__ for layer in model.layers]
    assert "RandomFlip" not in names and "RandomTranslation" not in names
    assert model.count_params() == STUDY_PARAMS["cnn_da_dropout"][0]


def test_true_resnet20_has_skip_connections_and_depth() -> None:
    model = build_model("resnet_cifar", (32, 32, 3), 10, depth=20)
    names = [type(layer).__name__ for layer in model.layers]
    assert names.count("Add") == 9  # 3 stages x 3 basic blocks
    assert names.count("Conv2D") == 19 + 2  # 19 weighted 3x3 layers + 2 projection shortcuts
    assert 0.26e6 < model.count_params() < 0.28e6  # He et al.: 0.27M
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model("resnet_cifar", (32, 32, 3), 10, depth=21)


def test_every_builder_has_the_registry_signature() -> None:
    for name, builder in BUILDERS.items():
        parameters = list(inspect.signature(builder).parameters)
        assert parameters[:2] == ["input_shape", "num_classes"], name
        model = builder((32, 32, 3), 10)
        assert model.output_shape == (None, 10), name


def test_unknown_builder() -> None:
    with pytest.raises(KeyError, match="unknown builder 'nope'"):
        build_model("nope", (32, 32, 3), 10)
