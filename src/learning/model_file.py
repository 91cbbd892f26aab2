"""The trained model's file: a `.keras` archive whose bytes depend only on the model (no save
date, shared objects numbered in order, fixed zip dates); `load_model` reads it back.
Details: docs/internals.md#model-file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from src.ground.files import atomic_write

FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def _numbered(config: Any, numbers: dict[int, int]) -> Any:
    """`config` with each `shared_object_id` (a memory address) replaced by its order of appearance."""
    if isinstance(config, list):
        return [_numbered(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    renumbered = {key: _numbered(value, numbers) for key, value in config.items()}
    if isinstance(config.get("shared_object_id"), int):
        renumbered["shared_object_id"] = numbers.setdefault(config["shared_object_id"], len(numbers) + 1)
    return renumbered


def _without_dates(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for entry in archive.infolist():
            data = archive.read(entry.filename)
            if entry.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata, sort_keys=True).encode()
            elif entry.filename == "config.json":
                data = json.dumps(_numbered(json.loads(data), {})).encode()
            fixed = zipfile.ZipInfo(entry.filename, date_time=FIXED_DATE)
            fixed.compress_type = entry.compress_type
            fixed.external_attr = 0o644 << 16
            out.writestr(fixed, data)


def save_model(model: Any, path: Path) -> None:
    """Save a Keras model to `path` (`.keras`), atomically and without a save date."""

    def write(tmp: Path) -> None:
        raw = tmp.with_name(f"{tmp.stem}.raw.keras")
        try:
            model.save(raw)
            _without_dates(raw, tmp)
        finally:
            raw.unlink(missing_ok=True)

    atomic_write(path, write)


def load_model(path: Path) -> Any:
    """Load a model saved by `save_model` (or by Keras)."""
    import keras

    import src.learning.layers  # noqa: F401 - registers the project's layers for deserialisation

    return keras.saving.load_model(path)
