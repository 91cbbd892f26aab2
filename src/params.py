"""The schema of params.yaml, checked by every stage before it does anything.

An unknown key, a missing key or a bad value stops the stage with one message that names
the key and says what is allowed, so a typo in `dvc exp run -S ...` never trains a model
with a silently ignored setting.
"""

from __future__ import annotations

import inspect
import re
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
    model_validator,
)

from src.cli import StageError

PARAMS_FILE = Path("params.yaml")
SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MODEL_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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
    strategy: Literal["auto", "default", "mirrored"] = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: PositiveInt = 25
    eval_batch_size: PositiveInt = 500
    onednn: bool = True
    fused_optimizer: bool = True


class ModelParams(_Strict):
    """One models.<id> entry: the training recipe plus the builder's keyword arguments."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    builder: str
    display_name: str = Field(min_length=1)
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: PositiveFloat = 0.001
    cpu_shards: Literal["auto"] | PositiveInt = 1  # batch shards trained side by side (src/shards.py)

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _float_from_int(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _builder_accepts_arguments(self) -> ModelParams:
        from src.models import BUILDERS  # imported here: only the schema of models needs Keras

        if self.builder not in BUILDERS:
            raise ValueError(f"builder {self.builder!r} does not exist; choose one of {sorted(BUILDERS)}")
        signature = inspect.signature(BUILDERS[self.builder])
        allowed = [name for name in signature.parameters if name not in ("input_shape", "num_classes")]
        unknown = sorted(set(self.builder_kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} for builder {self.builder!r}; it accepts {allowed}")
        for key, value in self.builder_kwargs.items():
            annotation = signature.parameters[key].annotation
            if annotation is inspect.Parameter.empty:
                continue
            try:
                TypeAdapter(annotation, config=ConfigDict(strict=True)).validate_python(value)
            except ValidationError as err:
                reason = err.errors()[0]["msg"]
                raise ValueError(f"{key}={value!r} is not allowed for {self.builder!r}: {reason}") from None
        return self

    @property
    def builder_kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Params(_Strict):
    seed: NonNegativeInt = 42
    data: DataParams
    prepare: PrepareParams = PrepareParams()
    train: TrainParams = TrainParams()
    models: dict[str, ModelParams] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _ids_are_names(cls, models: dict[str, ModelParams]) -> dict[str, ModelParams]:
        for model_id in models:
            if not MODEL_ID.match(model_id):
                raise ValueError(f"model id {model_id!r} must be lower-case letters, digits and underscores")
        return models


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


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded params mapping; raise ParamsError naming every bad key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(f"{source} is invalid:\n{_format_error(err)}") from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run the stages from the repository root")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw, source=str(path))
