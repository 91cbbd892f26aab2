"""The schema of params.yaml, checked by every stage before it does anything.

An unknown key, a missing key or a bad value stops the stage with one message that names
the key and says what is allowed, so a typo in `dvc exp run -S ...` never trains a model
with a silently ignored setting.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from src.ground.cli import StageError

PARAMS_FILE = Path("params.yaml")
SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MODEL_ID = re.compile(r"^[a-z][a-z0-9_]*$")


Builders = dict[str, Callable[..., Any]]  # src.learning.models.BUILDERS


class ParamsError(StageError):
    """params.yaml is missing, unreadable or does not match the schema."""


class _Strict(BaseModel):
    # strict: "1e-3" (a string to YAML 1.1) or "10" must not pass as numbers
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(_Strict):
    url: str = Field(pattern=r"^(https?|file)://", description="http(s):// or file:// URL")
    sha256: SHA256
    size: PositiveInt | None = None
    images_per_batch: PositiveInt = 10000


class PrepareParams(_Strict):
    val_size: PositiveInt = 5000
    max_images_per_split: PositiveInt | None = None


class TrainParams(_Strict):
    device: Literal["cpu", "gpu"] = "cpu"  # where to train; part of the run's identity (GPUs round otherwise)
    strategy: Literal["auto", "default", "mirrored"] = "auto"
    cpu_isa: Literal["avx2", "native"] = "avx2"  # oneDNN's instruction set (see src/learning/speed/)
    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: PositiveInt = 25
    eval_batch_size: PositiveInt = 500
    onednn: bool = True
    fused_optimizer: bool = True
    threads: PositiveInt = 2  # TensorFlow's intra-op threads per run: above 4 they change the bytes


class ModelParams(_Strict):
    """One models.<id> entry: the training recipe plus the builder's keyword arguments."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    builder: str
    display_name: str = Field(min_length=1)
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: PositiveFloat = 0.001
    cpu_shards: PositiveInt = 1  # batch shards trained side by side (src/learning/speed/shards.py)

    @field_validator("cpu_shards", mode="before")
    @classmethod
    def _no_auto_shards(cls, value: Any) -> Any:
        if value == "auto":
            raise ValueError(
                "'auto' is no longer allowed: it split batches by the machine's core count, so results "
                "depended on the machine; set a number (2 is what auto gave on two cores)"
            )
        return value

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _float_from_int(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def builder_kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CompareParams(_Strict):
    # training budgets (epochs) at which compare ranks the models from every epoch's test
    # predictions; those above a model's epochs are left out
    budgets: list[PositiveInt] = Field(default=[10, 20, 30, 40], min_length=1)

    @field_validator("budgets")
    @classmethod
    def _increasing(cls, budgets: list[int]) -> list[int]:
        if budgets != sorted(set(budgets)):
            raise ValueError(f"budgets {budgets} must increase, each once")
        return budgets


class Params(_Strict):
    seed: NonNegativeInt = 42
    seeds: list[NonNegativeInt] = Field(default=[42], min_length=1)
    data: DataParams
    prepare: PrepareParams = PrepareParams()
    train: TrainParams = TrainParams()
    models: dict[str, ModelParams] = Field(min_length=1)
    compare: CompareParams = CompareParams()

    @field_validator("seeds")
    @classmethod
    def _seeds_differ(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds {seeds} repeat a seed: each seed is one training run per model")
        return seeds

    @field_validator("models")
    @classmethod
    def _ids_are_names(cls, models: dict[str, ModelParams]) -> dict[str, ModelParams]:
        for model_id in models:
            if not MODEL_ID.match(model_id):
                raise ValueError(f"model id {model_id!r} must be lower-case letters, digits and underscores")
        return models


def check_builder_kwargs(params: Params, builders: Builders, source: str = "params.yaml") -> None:
    """Check every model's builder and its keyword arguments against the registry's signatures.

    The registry is passed in rather than imported, so that stages that build no model
    (download, prepare, compare) do not depend on src/learning/models.py: a new builder reruns only
    the stages that build models. The train stage checks them before anything else.
    """
    lines = []
    for model_id, config in params.models.items():
        problem = _builder_problem(config, builders)
        if problem:
            lines.append(f"  models.{model_id}: {problem}")
    if lines:
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(lines))


def _builder_problem(config: ModelParams, builders: Builders) -> str | None:
    if config.builder not in builders:
        return f"builder {config.builder!r} does not exist; choose one of {sorted(builders)}"
    signature = inspect.signature(builders[config.builder])
    allowed = [name for name in signature.parameters if name not in ("input_shape", "num_classes")]
    unknown = sorted(set(config.builder_kwargs) - set(allowed))
    if unknown:
        return f"unknown key(s) {unknown} for builder {config.builder!r}; it accepts {allowed}"
    for key, value in config.builder_kwargs.items():
        annotation = signature.parameters[key].annotation
        if annotation is inspect.Parameter.empty:
            continue
        try:
            TypeAdapter(annotation, config=ConfigDict(strict=True)).validate_python(value)
        except ValidationError as err:
            reason = err.errors()[0]["msg"]
            return f"{key}={value!r} is not allowed for {config.builder!r}: {reason}"
    return None


def _format_error(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against params.yaml's documented keys)"
        elif problem["type"] == "missing":
            message = "required key is missing"
        elif "input" in problem and problem["type"] not in ("value_error",):
            message += f" (got {problem['input']!r})"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "params.yaml", builders: Builders | None = None) -> Params:
    """Validate an already-loaded params mapping; raise ParamsError naming every bad key.

    With `builders` (src.learning.models.BUILDERS), also each model's builder and its arguments.
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(f"{source} is invalid:\n{_format_error(err)}") from None
    if builders is not None:
        check_builder_kwargs(params, builders, source)
    return params


def load_params(path: Path | str = PARAMS_FILE, builders: Builders | None = None) -> Params:
    """Read and validate params.yaml (with `builders`, the models' builder arguments too)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run the stages from the repository root")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw, source=str(path), builders=builders)
