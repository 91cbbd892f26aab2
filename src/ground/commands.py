"""The one runner of external commands (git, DVC, SLURM's tools): a failure is one clear error
that names the command, its exit status and the tail of its output."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from src.ground.cli import StageError

TAIL_LINES = 15


class CommandError(StageError):
    """An external command failed: which one, how, and what it said last."""

    def __init__(self, args: Sequence[str], status: int, output: str) -> None:
        self.status, self.output = status, output
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        super().__init__(f"`{' '.join(args)}` failed (exit status {status})" + (f":\n{tail}" if tail else ""))


def _require(program: str, env: dict[str, str] | None) -> None:
    path = (env or {}).get("PATH")  # the PATH the command will run with
    if shutil.which(program, path=path) is None and not Path(program).is_file():
        raise StageError(f"{program} is not on PATH: install it, or run this where it is")


def run(
    args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command with its output captured; with `check`, a failure raises CommandError."""
    _require(args[0], env)
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CommandError(args, result.returncode, result.stdout + result.stderr)
    return result


def output(args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """A command's stdout, stripped (a failure raises CommandError)."""
    return run(args, cwd=cwd, env=env).stdout.strip()


def stream(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    echo: TextIO | None = None,
) -> tuple[int, str]:
    """Run a command with stdout and stderr as one, shown as it goes on `echo` (default stdout)
    or written to `log`; the exit status and the output."""
    _require(args[0], env)
    lines = []
    sink = log.open("w") if log is not None else None
    shown = sink or echo or sys.stdout
    try:
        with subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                shown.write(line)
                shown.flush()
                lines.append(line)
    finally:
        if sink is not None:
            sink.close()
    return process.returncode, "".join(lines)
