"""src/running/workspaces.py: the worktrees side-by-side runs and SLURM tasks train in carry the
clone's DVC cache settings in, and the runs' timings back out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.ground import dvc_command
from src.ground.paths import timing_path
from src.running import tiny_project, workspaces


@pytest.fixture()
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with DVC initialised and a shared cache's settings, committed."""
    repo = tmp_path / "clone"
    repo.mkdir()
    monkeypatch.chdir(repo)
    tiny_project.run(repo, "git", "init", "-q", "-b", "main")
    tiny_project.run(repo, "git", "config", "user.email", "ci@example.org")
    tiny_project.run(repo, "git", "config", "user.name", "CI")
    dvc_command.run("init", "-q")
    dvc_command.run("cache", "dir", str(tmp_path / "shared-cache"))
    for key, value in (("cache.shared", "group"), ("core.hardlink_lock", "true"), ("cache.type", "symlink")):
        dvc_command.run("config", key, value)
    tiny_project.run(repo, "git", "add", "-A")
    tiny_project.run(repo, "git", "commit", "-qm", "dvc")
    return repo


def test_a_workspace_uses_the_clones_cache_with_its_shared_settings(clone: Path, tmp_path: Path) -> None:
    """Lustre without flock needs core.hardlink_lock, a team's cache cache.shared: a worktree
    that dropped them would write files the group cannot read, or hang on a lock."""
    path = workspaces.create("train@mlp_l2-42", workspaces.snapshot(), tmp_path / "study")

    def value(key: str) -> str:
        return dvc_command.run("config", key, cwd=path).strip()

    try:
        assert Path(value("cache.dir")) == (tmp_path / "shared-cache").resolve()
        assert value("cache.shared") == "group" and value("core.hardlink_lock") == "true"
        assert value("cache.type") == "symlink"  # the clone's, over the worktree default
    finally:
        workspaces.remove(path)


def test_a_runs_timing_comes_back_into_the_clone(clone: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "worktree"
    (worktree / timing_path("mlp_l2", 42)).parent.mkdir(parents=True)
    (worktree / timing_path("mlp_l2", 42)).write_text(json.dumps({"train_seconds": 12.5}))
    workspaces._copy_timing("train@mlp_l2-42", worktree)
    assert json.loads(timing_path("mlp_l2", 42).read_text()) == {"train_seconds": 12.5}
