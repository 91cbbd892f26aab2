"""The training-speed benchmark runs end to end on a few images and ends with its JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_train_speed_prints_one_json_line_per_model_with_levers() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/train_speed.py", "--models", "mlp_l2", "--images", "96", "--levers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["model"] == "mlp_l2"
    assert line["baseline_images_per_s"] > 0 and line["pipeline_images_per_s"] > 0
    speedup = line["pipeline_images_per_s"] / line["baseline_images_per_s"]
    assert line["ratio"] == pytest.approx(speedup, rel=0.02)
    assert set(line["levers_images_per_s"]) == {
        "without oneDNN",
        "plain Keras Adam",
        "steps_per_execution 1",
        "with XLA",
    }
    assert "mlp_l2          baseline" in result.stdout


def test_train_speed_rejects_unknown_models() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/train_speed.py", "--models", "vgg16"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown model ids ['vgg16']" in result.stderr
