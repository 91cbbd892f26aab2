"""Workspaces for runs side by side: a git worktree per training stage sharing this clone's DVC
cache, its dvc.lock entry handed back and merged here.
Details: docs/internals.md#workspaces.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from src.ground import commands, dvc_command
from src.ground.cli import StageError
from src.ground.dvc_command import LOCK_FILE
from src.ground.files import write_text
from src.ground.git import git
from src.ground.paths import BACKUPS_DIR, BACKUPS_VARIABLE, STUDY_DIR, split_run_name, timing_path

# DVC settings of this workspace that every worktree must share with it
SHARED_SETTINGS = ("cache.shared", "core.hardlink_lock", "cache.type")


def snapshot() -> str:
    """A commit of the working tree as it is (tracked files), without touching it."""
    return git("stash", "create") or git("rev-parse", "HEAD")


def folder_name(stage: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stage)


def create(stage: str, commit: str, root: Path = STUDY_DIR) -> Path:
    """A fresh worktree of `commit` for `stage`, with this workspace's DVC cache."""
    path = (root / "workspaces" / folder_name(stage)).resolve()
    if path.exists():
        remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--detach", "--force", str(path), commit)
    cache = dvc_command.value("cache", "dir") or str(Path(".dvc/cache").resolve())
    dvc_command.run("config", "--local", "cache.dir", str(Path(cache).resolve()), cwd=path)
    dvc_command.run("config", "--local", "cache.type", "hardlink,symlink,copy", cwd=path)
    for key in SHARED_SETTINGS:  # a shared cache's settings (group permissions, locks on Lustre)
        setting = dvc_command.value("config", key)
        if setting:
            dvc_command.run("config", "--local", key, setting, cwd=path)
    return path


def remove(path: Path) -> None:
    commands.run(["git", "worktree", "remove", "--force", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


def log_file(stage: str, root: Path = STUDY_DIR) -> Path:
    return root / "logs" / f"{folder_name(stage)}.log"


def train(
    stage: str, commit: str, root: Path = STUDY_DIR, log: Path | None = None, flags: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any] | None]:
    """`dvc repro <flags> <stage>` in a fresh workspace of `commit`, its output to `log` (or to
    this process's output); the exit status and, where it succeeded, the stage's dvc.lock entry
    (the workspace is then removed; a failed one is kept for a look)."""
    path = create(stage, commit, root)
    if log is None:
        print(f"{stage} in {path}", flush=True)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
    # a run stopped here (Ctrl-C, a time limit) resumes from the main workspace's backups
    backups = {BACKUPS_VARIABLE: str(BACKUPS_DIR.resolve())}
    status, _ = dvc_command.stream("repro", *flags, stage, env=backups, cwd=path, log=log)
    if status != 0:
        return status, None
    entry = lock_entry(stage, path)
    _copy_timing(stage, path)
    remove(path)
    return 0, entry


def compare(commit: str, entries: dict[str, Any], root: Path = STUDY_DIR) -> str:
    """`dvc repro` in a fresh workspace of `commit` (the submitted snapshot: params or code
    edited here since do not enter it) with the tasks' dvc.lock `entries`, so only compare
    runs; then every stage's entry and outputs into this workspace. DVC's output."""
    path = create("compare", commit, root)
    merge(entries, path / LOCK_FILE)
    status, output = dvc_command.stream("repro", cwd=path)
    if status != 0:
        raise StageError(f"`dvc repro` failed in {path} (exit status {status}; its output is above)")
    done = dvc_command.lock_entries(path / LOCK_FILE)
    for entry in done.values():
        for out in entry.get("outs") or []:
            _replace(path / out["path"], Path(out["path"]))
    merge(done)
    remove(path)
    return output


def _replace(source: Path, target: Path) -> None:
    """`target` made a copy of `source` (a file or a folder), as `dvc checkout` would."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def _copy_timing(stage: str, path: Path) -> None:
    """The run's timing (git-tracked, outside DVC's outputs) back into this workspace."""
    run = split_run_name(stage.removeprefix("train@"))
    if run is not None and (path / timing_path(*run)).is_file():
        timing_path(*run).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path / timing_path(*run), timing_path(*run))


def lock_entry(stage: str, path: Path) -> dict[str, Any]:
    """The stage's dvc.lock entry in a workspace that trained (or restored) it."""
    entry = dvc_command.lock_entries(path / LOCK_FILE).get(stage)
    if entry is None:
        raise StageError(f"{path / LOCK_FILE} has no entry for {stage}")
    return entry


def merge(entries: dict[str, Any], lock_file: Path = LOCK_FILE) -> list[str]:
    """Put stage entries into dvc.lock (why: a committed entry whose outputs are not here would
    make `dvc repro` train the stage again instead of looking in the run-cache)."""
    return dvc_command.merge_lock_entries(entries, lock_file)


def write_entries(path: Path, entries: dict[str, Any]) -> Path:
    """Stages' dvc.lock entries as the file a run hands on (`read_entries` reads it back)."""
    write_text(path, yaml.safe_dump({"stages": entries}, sort_keys=False))
    return path


def read_entries(paths: list[Path]) -> dict[str, Any]:
    """The stage entries of files from `write_entries`, later files winning."""
    entries: dict[str, Any] = {}
    for path in paths:
        entries.update((yaml.safe_load(path.read_text()) or {}).get("stages") or {})
    return entries
