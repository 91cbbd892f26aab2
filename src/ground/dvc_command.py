"""The one way the project runs DVC: this environment's DVC, whatever PATH holds.

`dvc` is run as `python -m dvc` with the interpreter running this code, and with that
interpreter's folder first on PATH, so that the stages DVC starts (`python -m src.stages.train ...`)
run with the project's packages too. A fresh CI runner's PATH, or a shell without the
virtual environment activated, then finds the same tools as `make`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from src.ground.cli import StageError


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ with this interpreter's folder first on PATH and DVC's analytics off."""
    folder = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{path}", "DVC_NO_ANALYTICS": "1", **(extra or {})}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def run(*args: str, check: bool = True, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """`dvc <args>` (in `cwd`), its output captured; its stdout. On failure (with `check`) one
    StageError that quotes DVC's output."""
    result = subprocess.run(command(*args), capture_output=True, text=True, env=environment(env), cwd=cwd)
    if check and result.returncode != 0:
        raise StageError(f"`dvc {' '.join(args)}` failed:\n{(result.stdout + result.stderr).strip()}")
    return result.stdout


def value(*args: str) -> str:
    """`dvc <args>`'s stdout, stripped; "" where it fails (an unset config key, say)."""
    result = subprocess.run(command(*args), capture_output=True, text=True, env=environment())
    return result.stdout.strip() if result.returncode == 0 else ""


def stream(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`dvc <args>` with its output shown as it goes (stdout and stderr as one); returns the exit
    status and the output."""
    lines = []
    with subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=environment(env),
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    return process.returncode, "".join(lines)


def stream_checked(*args: str) -> str:
    """`stream`, raising one StageError where DVC fails (its output is above by then)."""
    returncode, output = stream(*args)
    if returncode != 0:
        raise StageError(f"`dvc {' '.join(args)}` failed (its output is above)")
    return output
