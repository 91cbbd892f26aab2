"""The run recorded on main (dvc.lock, reports/) is current, complete and portable.

A fresh clone shows its scores, curves and predictions without training, so they must be the
ones the committed code and params produce: a change to a stage's code or params has to land
with the rerun's dvc.lock and reports.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

LOCK = ROOT / "dvc.lock"
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
# The recorded run may name another copy of the data than params.yaml (see the README)
DATA_KEYS = {"data.url", "data.sha256", "data.size"}
RERUN = "rerun the study (dvc repro) and commit its dvc.lock and reports/"

pytestmark = pytest.mark.skipif(not LOCK.exists(), reason="no recorded run in this checkout")


def _lock() -> dict:
    return yaml.safe_load(LOCK.read_text())["stages"]


def _lookup(params: dict, dotted: str):  # type: ignore[no-untyped-def]
    value = params
    for part in dotted.split("."):
        value = value[part]
    return value


def test_every_stage_of_the_pipeline_is_recorded() -> None:
    runs = [f"train@{model}-{seed}" for model in PARAMS["models"] for seed in PARAMS["seeds"]]
    assert sorted(_lock()) == sorted(["download", "prepare", *runs, "compare"])


@pytest.mark.parametrize("stage", sorted(yaml.safe_load(LOCK.read_text())["stages"]) if LOCK.exists() else [])
def test_the_recorded_run_used_the_committed_code_and_params(stage: str) -> None:
    entry = _lock()[stage]
    for dep in entry.get("deps", []):
        if dep["path"].startswith("src/"):
            digest = hashlib.md5((ROOT / dep["path"]).read_bytes()).hexdigest()
            assert digest == dep["md5"], f"{stage} was recorded with another {dep['path']}: {RERUN}"
    for key, value in entry.get("params", {}).get("params.yaml", {}).items():
        if key not in DATA_KEYS:
            assert _lookup(PARAMS, key) == value, f"{stage} was recorded with other params ({key}): {RERUN}"


def test_the_readme_names_the_recorded_data_and_shows_the_recorded_scores() -> None:
    readme = (ROOT / "README.md").read_text()
    sha256 = _lock()["download"]["params"]["params.yaml"]["data.sha256"]
    assert sha256[:8] in readme and sha256[-4:] in readme, (
        "the README must say which data produced main's numbers"
    )
    with (ROOT / "reports/comparison.csv").open() as file:
        for row in csv.DictReader(file):
            assert f"| {row['model']}" in readme and f"{float(row['accuracy']):.4f}" in readme, row["model"]


def test_one_metrics_file_of_four_scores_per_model() -> None:
    for model in PARAMS["models"]:
        scores = json.loads((ROOT / "reports" / "metrics" / f"{model}.json").read_text())
        assert list(scores) == ["accuracy", "precision", "recall", "f1"], model


def test_no_committed_report_holds_a_path_of_this_machine() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "dvc.lock", "reports"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"file://|/home/|/root/|/tmp/|/Users/|/work/|[A-Z]:\\\\")
    for name in tracked:
        if name.endswith((".json", ".csv", ".md", ".lock", ".yaml")):
            match = pattern.search((ROOT / name).read_text())
            assert match is None, f"{name} holds a machine path: {match.group(0) if match else ''}"
