"""One workspace per training run: a git worktree of the study's state, sharing its DVC cache.

Training runs side by side (on this machine or as SLURM tasks) each run `dvc repro <stage>` in a
workspace of their own, so no run takes another's DVC lock (DVC keeps one per workspace), and
nothing is copied: each workspace is a `git worktree` of a snapshot of the working tree (`git
stash create`: uncommitted params and code included, the working tree left alone) whose DVC
cache is the main workspace's (`cache.dir`), with hard links into it. What a run trains lands
in that shared cache and its run-cache; its `dvc.lock` entry is handed back, and the main
workspace's `dvc repro` then finds every trained stage there and trains nothing again.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from src.ground import dvc_command
from src.ground.cli import StageError
from src.ground.files import write_text

LOCK_FILE = Path("dvc.lock")
STUDY_DIR = Path(".dvc/tmp/study")  # workspaces, logs and lock entries of the runs


# `git stash create` writes a commit object: give it an author where the clone has none configured
IDENTITY = ("-c", "user.name=study", "-c", "user.email=study@localhost")


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StageError(f"`git {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout.strip()


def snapshot() -> str:
    """A commit of the working tree as it is (tracked files), without touching it."""
    return _git("stash", "create") or _git("rev-parse", "HEAD")


def folder_name(stage: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stage)


def create(stage: str, commit: str, root: Path = STUDY_DIR) -> Path:
    """A fresh worktree of `commit` for `stage`, with this workspace's DVC cache."""
    path = (root / "workspaces" / folder_name(stage)).resolve()
    if path.exists():
        remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git("worktree", "add", "--detach", "--force", str(path), commit)
    cache = dvc_command.value("cache", "dir") or str(Path(".dvc/cache").resolve())
    dvc_command.run("config", "--local", "cache.dir", str(Path(cache).resolve()), cwd=path)
    dvc_command.run("config", "--local", "cache.type", "hardlink,symlink,copy", cwd=path)
    return path


def remove(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], capture_output=True)
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
    command = dvc_command.command("repro", *flags, stage)
    if log is None:
        print(f"{stage} in {path}", flush=True)
        status = subprocess.run(command, cwd=path, env=dvc_command.environment()).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            status = subprocess.run(
                command, cwd=path, stdout=out, stderr=subprocess.STDOUT, env=dvc_command.environment()
            ).returncode
    if status != 0:
        return status, None
    entry = lock_entry(stage, path)
    remove(path)
    return 0, entry


def lock_entry(stage: str, path: Path) -> dict[str, Any]:
    """The stage's dvc.lock entry in a workspace that trained (or restored) it."""
    lock = yaml.safe_load((path / LOCK_FILE).read_text()) if (path / LOCK_FILE).exists() else {}
    entry = (lock or {}).get("stages", {}).get(stage)
    if entry is None:
        raise StageError(f"{path / LOCK_FILE} has no entry for {stage}")
    return entry


def merge(entries: dict[str, Any], lock_file: Path = LOCK_FILE) -> list[str]:
    """Put stage entries into dvc.lock (why: a committed entry whose outputs are not here would
    make `dvc repro` train the stage again instead of looking in the run-cache)."""
    lock = yaml.safe_load(lock_file.read_text()) if lock_file.exists() else {"schema": "2.0"}
    lock["stages"] = {**(lock.get("stages") or {}), **entries}
    write_text(lock_file, yaml.safe_dump(lock, sort_keys=False))
    return list(entries)


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
