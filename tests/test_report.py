"""The review report's verdicts, on a small git repository of reports (no training)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from src.evidence import report
from src.ground.cli import StageError
from tests.test_compare import _predictions


def _write(
    root: Path, model: str, accuracy: float, seeds: tuple[int, ...] = (42,), step: float = 0.0
) -> None:
    """A model's scores and its runs' predictions, seed k (in order) at accuracy + k * step."""
    (root / "reports/metrics").mkdir(parents=True, exist_ok=True)
    (root / "reports/predictions").mkdir(parents=True, exist_ok=True)
    scores = {"accuracy": accuracy, "precision": accuracy, "recall": accuracy, "f1": accuracy}
    (root / f"reports/metrics/{model}.json").write_text(json.dumps(scores))
    for k, seed in enumerate(seeds):
        text = _predictions(accuracy + k * step, images=1000)
        (root / f"reports/predictions/{model}-{seed}.csv").write_text(text)


def model_verdicts(ref: str) -> list[dict]:
    rows, family = report.model_verdicts(ref)
    assert family.endswith(("5%.", "was run at."))
    return rows


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
    # one seed a side: McNemar sees the test set's noise only, and gives no verdict
    assert (
        verdicts["jumpy"]["change"] == "+10.00 pts"
        and verdicts["jumpy"]["McNemar p (test set only)"] == "< 0.001 (seed 42 against seed 42)"
    )
    assert verdicts["jumpy"]["verdict"].startswith("no verdict: one seed per side cannot tell")
    assert verdicts["nudged"]["verdict"].startswith("no verdict")
    assert verdicts["added"]["verdict"] == "no scores at HEAD"


def test_several_seeds_on_both_sides_use_the_seed_level_test(reviewed: Path) -> None:
    for model, before, after in (("jumpy", 0.60, 0.70),):
        for path in (reviewed / "reports/predictions").glob(f"{model}-*.csv"):
            path.unlink()
        _write(reviewed, model, before, seeds=(1, 2, 3), step=0.01)
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(
            ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "seeds"],
            check=True,
        )
        _write(reviewed, model, after, seeds=(1, 2, 3), step=0.015)
    [row] = model_verdicts("HEAD")
    assert row["test"].startswith("two-level t on seeds and test images (paired over 3 seeds")
    assert row["verdict"].startswith("better")
    assert row["P(new > old)"] == "1.00 (9 pairs of runs)" and row["interval"].endswith("(95.0%)")
    _write(reviewed, "jumpy", 0.601, seeds=(1, 2, 3), step=0.01)  # one image more at every seed
    [row] = model_verdicts("HEAD")
    # the same gain at every seed, but one image of a thousand: the test images' sampling alone
    # leaves it within noise (the seed-only test had no spread to judge it against)
    assert row["verdict"].startswith("within noise (p = ")


def test_verdicts_of_one_report_are_corrected_together(reviewed: Path) -> None:
    for model in ("jumpy", "nudged", "steady"):
        (reviewed / f"reports/predictions/{model}-42.csv").unlink()
        _write(reviewed, model, 0.60, seeds=(1, 2, 3), step=0.02)
    _commit("three seeds each")
    _write(reviewed, "jumpy", 0.70, seeds=(1, 2, 3), step=0.025)
    _write(reviewed, "nudged", 0.605, seeds=(1, 2, 3), step=0.019)
    rows, family = report.model_verdicts("HEAD")
    assert family.startswith("The 2 seed-level verdicts are Holm-corrected together")
    jumpy = {row["model"]: row for row in rows}["jumpy"]
    assert jumpy["verdict"].startswith("better") and not jumpy["interval"].endswith("(95.0%)")


def _commit(message: str) -> None:
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", message], check=True
    )


def test_one_new_run_is_judged_against_the_recorded_seeds(reviewed: Path) -> None:
    for path in (reviewed / "reports/predictions").glob("jumpy-*.csv"):
        path.unlink()
    spread = {seed: accuracy for seed, accuracy in ((1, 0.58), (2, 0.60), (3, 0.62))}
    for seed, accuracy in spread.items():
        (reviewed / f"reports/predictions/jumpy-{seed}.csv").write_text(_predictions(accuracy, images=1000))
    _commit("three seeds")
    for seed in (2, 3):  # a quick run of seed 1 alone, nothing else changed: its mean is another ...
        (reviewed / f"reports/predictions/jumpy-{seed}.csv").unlink()
    _write(reviewed, "jumpy", 0.58, seeds=())
    assert model_verdicts("HEAD") == []  # ... but its run is the recorded one: nothing to judge
    _write(reviewed, "jumpy", 0.63, seeds=(1,))  # one quick run of a change: inside the seed spread
    [row] = model_verdicts("HEAD")
    assert row["test"].startswith("two-level t on seeds and test images (seeds independent")
    assert (
        row["verdict"].startswith("within noise (p = ")
        and "one run against 3 seeds detects" in row["verdict"]
    )
    _write(reviewed, "jumpy", 0.80, seeds=(1,))  # far outside it
    [row] = model_verdicts("HEAD")
    assert row["verdict"].startswith("better, p ")


def test_an_unknown_ref_is_named_with_the_fix(reviewed: Path) -> None:
    from src.evidence.report import build_report

    with pytest.raises(StageError, match=r"no commit named 'nosuchref' in this repository: fetch it first"):
        build_report("nosuchref")


@pytest.mark.parametrize("damage", ["truncated", "header only", "other labels"])
def test_predictions_of_other_test_images_stop_with_the_file_named(reviewed: Path, damage: str) -> None:
    _write(reviewed, "jumpy", 0.70)  # a change to judge
    path = reviewed / "reports/predictions/jumpy-42.csv"
    lines = path.read_text().splitlines()
    if damage == "truncated":
        lines = lines[:-3]
    elif damage == "header only":
        lines = lines[:1]
    else:
        first = lines[1].split(",")
        lines[1] = f"{'truck' if first[0] != 'truck' else 'ship'},{first[1]}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StageError, match=r"reports/predictions/jumpy-42.csv \(workspace\)"):
        model_verdicts("HEAD")
