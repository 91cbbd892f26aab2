from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from src.ground.params import ParamsError, load_params, parse_params
from src.learning.models import BUILDERS
from tests.conftest import ROOT


def test_repository_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert list(params.models) == ["mlp_bn", "mlp_l2", "simple_cnn", "cnn_da_dropout", "resnet"]
    for config in params.models.values():  # the study's recipe
        assert (config.epochs, config.batch_size, config.optimizer, config.learning_rate) == (
            10,
            32,
            "adam",
            0.001,
        )
    assert params.prepare.val_size == 5000 and params.prepare.max_images_per_split is None
    assert params.data.url == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert params.models["cnn_da_dropout"].builder_kwargs["augment"] is True


def _error(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw, builders=BUILDERS)
    return str(info.value)


@pytest.fixture()
def raw(project_params: dict) -> dict:
    return copy.deepcopy(project_params)


def test_unknown_top_level_key_is_named(raw: dict) -> None:
    raw["prepare"]["val_sizee"] = 10
    assert "prepare.val_sizee: unknown key" in _error(raw)


def test_negative_epochs_name_the_key(raw: dict) -> None:
    raw["models"]["simple_cnn"]["epochs"] = -1
    message = _error(raw)
    assert "models.simple_cnn.epochs" in message and "greater than 0" in message


def test_yaml_1_1_exponent_string_is_rejected(raw: dict) -> None:
    raw["models"]["mlp_bn"]["learning_rate"] = yaml.safe_load("lr: 1e-3")["lr"]  # PyYAML: the string "1e-3"
    message = _error(raw)
    assert "models.mlp_bn.learning_rate" in message and "'1e-3'" in message


def test_integer_learning_rate_is_a_float(raw: dict) -> None:
    raw["models"]["mlp_bn"]["learning_rate"] = 1
    assert parse_params(raw).models["mlp_bn"].learning_rate == 1.0


def test_unknown_builder_lists_the_registered_ones(raw: dict) -> None:
    raw["models"]["resnet"]["builder"] = "resnet50"
    message = _error(raw)
    assert "builder 'resnet50' does not exist" in message and "vgg_style" in message


def test_unknown_builder_argument_lists_allowed_ones(raw: dict) -> None:
    raw["models"]["simple_cnn"]["dropout"] = 0.3
    message = _error(raw)
    assert "models.simple_cnn" in message and "['dropout']" in message and "dense_units" in message


def test_builder_argument_out_of_range(raw: dict) -> None:
    raw["models"]["cnn_da_dropout"]["dropout"] = 1.5
    message = _error(raw)
    assert "dropout=1.5" in message and "less than 1" in message


def test_builder_argument_of_wrong_type(raw: dict) -> None:
    raw["models"]["cnn_da_dropout"]["augment"] = "yes"
    assert "augment='yes'" in _error(raw)


def test_builder_arguments_are_checked_only_with_the_registry(raw: dict) -> None:
    """download, prepare and compare validate without src.learning.models (not their dependency)."""
    raw["models"]["simple_cnn"]["dropout"] = 0.3
    assert parse_params(raw).models["simple_cnn"].builder_kwargs == {"dense_units": 64, "dropout": 0.3}


def test_cpu_shards_is_a_positive_count_never_the_core_count(raw: dict) -> None:
    raw["models"]["resnet"]["cpu_shards"] = "two"
    raw["models"]["simple_cnn"]["cpu_shards"] = 0
    raw["models"]["cnn_da_dropout"]["cpu_shards"] = "auto"
    message = _error(raw)
    assert "models.resnet.cpu_shards" in message and "models.simple_cnn.cpu_shards" in message
    assert "models.cnn_da_dropout.cpu_shards: 'auto' is no longer allowed" in message
    raw["models"]["resnet"]["cpu_shards"] = 3
    raw["models"]["simple_cnn"]["cpu_shards"] = 1
    raw["models"]["cnn_da_dropout"]["cpu_shards"] = 2
    params = parse_params(raw)
    assert (
        params.models["resnet"].cpu_shards == 3 and "cpu_shards" not in params.models["resnet"].builder_kwargs
    )


def test_cpu_isa_and_threads(raw: dict) -> None:
    assert parse_params(raw).train.cpu_isa == "avx2" and parse_params(raw).train.threads == 2
    raw["train"]["cpu_isa"] = "avx512"
    assert "train.cpu_isa: Input should be 'avx2' or 'native'" in _error(raw)
    raw["train"]["cpu_isa"] = "avx2"
    raw["train"]["threads"] = 0
    assert "train.threads: Input should be greater than 0" in _error(raw)
    raw["train"]["threads"] = "auto"  # never the machine's core count: it decides the bytes
    assert "train.threads" in _error(raw)


def test_bad_sha256_and_url(raw: dict) -> None:
    raw["data"]["sha256"] = "abc"
    raw["data"]["url"] = "ftp://example.org/x.tar.gz"
    message = _error(raw)
    assert "data.sha256" in message and "data.url" in message


def test_bad_model_id_and_empty_models(raw: dict) -> None:
    raw["models"]["Bad-Id"] = raw["models"]["mlp_bn"]
    assert "model id 'Bad-Id'" in _error(raw)
    raw["models"] = {}
    assert "models" in _error(raw)


def test_missing_and_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("- a list\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(tmp_path / "params.yaml")
