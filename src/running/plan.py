"""Which training runs a study still needs, and in which order: read from DVC and the timings."""

from __future__ import annotations

import json
from pathlib import Path

from src.ground import dvc_command
from src.ground.params import PARAMS_FILE
from src.ground.paths import TIMINGS_DIR, split_run_name


def set_seeds(seeds: list[int], params_file: Path = PARAMS_FILE) -> None:
    """Set params.yaml's `seeds`, keeping its comments, as `dvc exp run -S` does."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(params_file, [f"seeds=[{','.join(str(seed) for seed in seeds)}]"])


def training_stages(cwd: Path | None = None) -> list[str]:
    """Every train@<id>-<seed> stage dvc.yaml lists (in `cwd`), as `dvc stage list` names them."""
    names = dvc_command.run("stage", "list", "--name-only", cwd=cwd).split()
    return [name for name in names if name.startswith("train@")]


def outdated_training_stages() -> list[str]:
    """The train@<id>-<seed> stages that `dvc status` reports out of date."""
    status = json.loads(dvc_command.run("status", "--json") or "{}")
    return [stage for stage in status if stage.startswith("train@")]


def expected_seconds(timings_dir: Path = TIMINGS_DIR) -> dict[str, float]:
    """Per model, the longest training time of its runs in reports/timings/."""
    seconds: dict[str, float] = {}
    for path in sorted(timings_dir.glob("*.json")) if timings_dir.is_dir() else []:
        model_id = (split_run_name(path.stem) or (path.stem, 0))[0]
        seconds[model_id] = max(
            seconds.get(model_id, 0.0), float(json.loads(path.read_text())["train_seconds"])
        )
    return seconds


def model_of(stage: str) -> str:
    run = split_run_name(stage.removeprefix("train@"))
    return run[0] if run else stage


def longest_first(stages: list[str], timings_dir: Path = TIMINGS_DIR) -> list[str]:
    """Order the stages by the training time their model took in the last runs (so the long
    ones do not end up last, alone); never timed ones first."""
    seconds = expected_seconds(timings_dir)
    return sorted(stages, key=lambda stage: seconds.get(model_of(stage), float("inf")), reverse=True)
