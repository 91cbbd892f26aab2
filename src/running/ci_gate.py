"""Whether the pull-request study can run here, decided with the standard library alone, so the
workflow's plan job asks before it installs anything (`python -m src.running.ci_gate`): a fork's
pull request, empty secrets (Dependabot's) or a remote only this machine reaches skip it with
one notice. src/running/ci.py's plan asks the same questions with DVC's own answer for the
remote."""

from __future__ import annotations

import configparser
import json
import os
import re
from pathlib import Path

S3_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def output(**values: str) -> None:
    """Step outputs: to $GITHUB_OUTPUT on a runner, printed elsewhere."""
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a") as out:
            out.write(lines)
    print(lines, end="")


def notice(message: str) -> None:
    print(f"::notice::{message}" if os.environ.get("GITHUB_ACTIONS") else message)


def is_fork() -> bool:
    """Whether this run is for a pull request from a fork (no secrets, a read-only token)."""
    event = os.environ.get("GITHUB_EVENT_PATH")
    if not event or not Path(event).is_file():
        return False
    pull = json.loads(Path(event).read_text()).get("pull_request") or {}
    head, base = (pull.get(side, {}).get("repo") or {} for side in ("head", "base"))
    return bool(pull) and head.get("full_name") != base.get("full_name")


def configured_remote(root: Path = Path(".")) -> str | None:
    """The default remote's URL in the repository's DVC config files (.dvc/config, then
    .dvc/config.local over it); None where there is none."""
    config = configparser.ConfigParser()
    for path in (root / ".dvc" / "config", root / ".dvc" / "config.local"):
        if path.is_file():  # DVC indents its keys, which configparser would read as continuations
            config.read_string("\n".join(line.strip() for line in path.read_text().splitlines()))
    sections = {section.removeprefix("'").removesuffix("'"): section for section in config.sections()}
    name = config.get("core", "remote", fallback=None)
    section = sections.get(f'remote "{name}"') if name else None
    return config.get(section, "url", fallback=None) if section else None


def skip_reason(url: str | None) -> str | None:
    """Why the fan-out cannot run with this default remote URL, or None where it can."""
    if is_fork():
        return "pull request from a fork: it gets no secrets, so the study fan-out is skipped"
    if not re.match(r"^[a-z0-9]+://", url or ""):
        return "no shared DVC remote (dvc remote add -d team s3://...): the study fan-out is skipped"
    missing = [name for name in S3_SECRETS if not os.environ.get(name)]
    if os.environ.get("GITHUB_ACTIONS") and str(url).startswith("s3://") and missing:
        # GitHub hands empty secrets to Dependabot's pull requests and to forks' runs
        return (f"the secrets {' and '.join(missing)} are empty here (Dependabot and forks get none): "
                "the study fan-out is skipped")  # fmt: skip
    return None


def main() -> None:
    reason = skip_reason(configured_remote())
    if reason:
        notice(reason)
        output(go="false", enabled="false", stages="[]")
    else:
        output(go="true")


if __name__ == "__main__":
    main()
