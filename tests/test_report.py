"""The review report's verdicts, on a small git repository of reports (no training)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from src.report import model_verdicts
from tests.test_compare import _predictions


def _write(root: Path, model: str, accuracy: float, seeds: tuple[int, ...] = (42,)) -> None:
    (root / "reports/metrics").mkdir(parents=True, exist_ok=True)
    (root / "reports/predictions").mkdir(parents=True, exist_ok=True)
    scores = {"accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy}
    (root / f"reports/metrics/{model}.json").write_text(json.dumps(scores))
    for seed in seeds:
        (root / f"reports/predictions/{model}-{seed}.csv").write_text(_predictions(accuracy, images=1000))


@pytest.fixture()
def reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    _write(tmp_path, "steady", 0.60)
    _write(tmp_path, "jumpy", 0.60)
    _write(tmp_path, "nudged", 0.60)
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "base"], check=True
    )
    return tmp_path


def test_one_verdict_per_changed_model(reviewed: Path) -> None:
    _write(reviewed, "jumpy", 0.70)  # 100 more of 1,000 images right
    _write(reviewed, "nudged", 0.605)  # 5 more
    _write(reviewed, "added", 0.50)
    verdicts = {row["model"]: row for row in model_verdicts("HEAD")}
    assert set(verdicts) == {"jumpy", "nudged", "added"}  # "steady" did not change
    assert verdicts["jumpy"]["verdict"] == "better, p < 0.001" and verdicts["jumpy"]["change"] == "+10.00 pts"
    assert verdicts["nudged"]["verdict"].startswith("within noise (p = ")
    assert verdicts["added"]["verdict"] == "no scores at HEAD"


def test_several_seeds_on_both_sides_use_the_seed_level_test(reviewed: Path) -> None:
    for model, before, after in (("jumpy", 0.60, 0.70),):
        for path in (reviewed / "reports/predictions").glob(f"{model}-*.csv"):
            path.unlink()
        _write(reviewed, model, before, seeds=(1, 2, 3))
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(
            ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "seeds"],
            check=True,
        )
        _write(reviewed, model, after, seeds=(1, 2, 3))
    [row] = model_verdicts("HEAD")
    assert row["test"] == "paired t over seeds [1, 2, 3]" and row["verdict"].startswith("better")
