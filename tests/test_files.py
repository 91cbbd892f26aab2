from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.ground.files import atomic_write, write_json


def test_write_json_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "metrics.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_text("previous")

    def crash(tmp: Path) -> None:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path  # same folder: the rename is atomic
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
