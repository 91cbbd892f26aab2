"""git, as the project runs it (through the one command runner)."""

from __future__ import annotations

from pathlib import Path

from src.ground import commands

# `git stash create` writes a commit object: give it an author where the clone has none configured
IDENTITY = ("-c", "user.name=study", "-c", "user.email=study@localhost")


def git(*args: str, cwd: Path | None = None) -> str:
    """`git <args>`'s stdout, stripped; a failure raises CommandError."""
    return commands.output(["git", *IDENTITY, *args], cwd=cwd)


def show(ref: str, path: Path) -> str | None:
    """A file's text at a git ref, or None where it does not exist there."""
    result = commands.run(["git", "show", f"{ref}:{path.as_posix()}"], check=False)
    return result.stdout if result.returncode == 0 else None


def listed(ref: str, directory: Path) -> list[str]:
    """The names in a directory at a git ref ([] where it did not exist there)."""
    result = commands.run(["git", "ls-tree", "--name-only", f"{ref}:{directory.as_posix()}"], check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []
