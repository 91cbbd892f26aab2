"""The one way the project runs DVC: this environment's DVC, whatever PATH holds.

`dvc` is run as `python -m dvc` with the interpreter running this code, and with that
interpreter's folder first on PATH, so that the stages DVC starts (`python -m src.stages.train ...`)
run with the project's packages too. A fresh CI runner's PATH, or a shell without the
virtual environment activated, then finds the same tools as `make`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from src.ground import commands
from src.ground.cli import StageError
from src.ground.files import write_text


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ with this interpreter's folder first on PATH and DVC's analytics off."""
    folder = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{path}", "DVC_NO_ANALYTICS": "1", **(extra or {})}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def run(*args: str, check: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """`dvc <args>` (in `cwd`), its output captured; its stdout. A failure (with `check`) raises
    CommandError, which quotes the tail of DVC's output."""
    return commands.run(command(*args), cwd=cwd, env=environment(env), check=check).stdout


def value(*args: str) -> str:
    """`dvc <args>`'s stdout, stripped; "" where it fails (an unset config key, say)."""
    result = commands.run(command(*args), env=environment(), check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def stream(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, log: Path | None = None
) -> tuple[int, str]:
    """`dvc <args>` with its output shown as it goes, or written to `log` (stdout and stderr as
    one); returns the exit status and the output."""
    return commands.stream(command(*args), cwd=cwd, env=environment(env), log=log)


def stream_checked(*args: str) -> str:
    """`stream`, raising one StageError where DVC fails (its output is above by then)."""
    returncode, output = stream(*args)
    if returncode != 0:
        raise StageError(f"`dvc {' '.join(args)}` failed (exit status {returncode}; its output is above)")
    return output


# --- what DVC says and records, read in one place -------------------------------------------

LOCK_FILE = Path("dvc.lock")
RUNNING = re.compile(r"Running stage '([^']+)'")


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran, in order."""
    return RUNNING.findall(output)


def lock_entries(lock_file: Path = LOCK_FILE) -> dict[str, Any]:
    """dvc.lock's stage entries ({} where there is no dvc.lock)."""
    if not lock_file.exists():
        return {}
    lock: dict[str, Any] = yaml.safe_load(lock_file.read_text()) or {}
    stages: dict[str, Any] = lock.get("stages") or {}
    return stages


def merge_lock_entries(entries: dict[str, Any], lock_file: Path = LOCK_FILE) -> list[str]:
    """Put stage entries into dvc.lock, keeping the others; returns the stages put."""
    lock: dict[str, Any] = yaml.safe_load(lock_file.read_text()) if lock_file.exists() else {"schema": "2.0"}
    lock["stages"] = {**(lock.get("stages") or {}), **entries}
    write_text(lock_file, yaml.safe_dump(lock, sort_keys=False))
    return list(entries)
