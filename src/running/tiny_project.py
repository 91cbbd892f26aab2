"""A copy of the project on tiny data: what the end-to-end tests and the queue benchmark run.

The project's files (PROJECT_FILES) copied into a fresh git repository whose params.yaml points
at a tiny tarball in the official layout (src/ground/fake_cifar.py): 300 training images, 60 test
images, one epoch per model, so a training run takes a second or two.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from src.ground import commands, fake_cifar

ROOT = Path(__file__).resolve().parents[2]
IMAGES_PER_BATCH = 60  # 300 training images, 60 test images
VAL_SIZE = 50
PROJECT_FILES = [
    "src",
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/plots",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
]


def tiny_params(project_params: dict[str, Any], tarball: Path, epochs: int = 1) -> dict[str, Any]:
    """The repository's params, pointed at a tiny tarball and shortened for tests."""
    params = copy.deepcopy(project_params)
    params["data"].update(
        url=tarball.as_uri(),
        sha256=fake_cifar.sha256(tarball),
        size=tarball.stat().st_size,
        images_per_batch=IMAGES_PER_BATCH,
    )
    params["prepare"]["val_size"] = VAL_SIZE
    params["seeds"] = [42]  # one run per model; tests that need several set them
    params["train"]["steps_per_execution"] = 2
    for model in params["models"].values():
        model["epochs"] = epochs
    return params


def write_params(directory: Path, params: dict[str, Any]) -> Path:
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def copy_project(repo: Path, extra: tuple[str, ...] = ()) -> Path:
    """The project's PROJECT_FILES (and `extra` ones) copied into `repo`."""
    for name in [*PROJECT_FILES, *extra]:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return repo


def environment() -> dict[str, str]:
    """The environment with this interpreter's `python` and `dvc` first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(repo: Path, *args: str) -> str:
    """A command in `repo`; its output (stdout and stderr). A failure raises CommandError."""
    result = commands.run(args, cwd=repo, env=environment())
    return result.stdout + result.stderr


def create(
    repo: Path,
    tarball: Path,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    extra: tuple[str, ...] = (),
) -> Path:
    """The project in `repo` on the tiny `tarball` (only `models`, with `seeds`), committed on
    `main`, with a committer configured in the repository for the commits that follow."""
    copy_project(repo, extra)
    params = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()), tarball)
    if models is not None:
        params["models"] = {model: params["models"][model] for model in models}
    if seeds is not None:
        params["seeds"] = seeds
    write_params(repo, params)
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "git", "config", "user.email", "ci@example.org")
    run(repo, "git", "config", "user.name", "CI")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "study")
    return repo
