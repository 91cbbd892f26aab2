"""DVC's remote commands (`python -m src.running.remote push|pull|fetch|repro|status`), with a
failure turned into one line that says what failed and the fix; nothing a failed transfer
moved is lost.
Details: docs/internals.md#remote.
"""

from __future__ import annotations

import re
import sys

from src.ground import dvc_command
from src.ground.cli import StageError, run_stage

COMMANDS = ("push", "pull", "fetch", "repro", "status")

# (pattern in DVC's output, what went wrong, the fix); the first that matches decides
FAULTS = (
    (
        r"requires '(dvc-[a-z0-9]+)' to be installed",
        "needs DVC's {0} plugin, which is not installed",
        "run make setup EXTRAS=s3 (dvc-s3), or pip install the plugin pinned in requirements.lock",
    ),
    (
        r"(InvalidAccessKeyId|SignatureDoesNotMatch|InvalidToken|ExpiredToken|AccessDenied|Forbidden|"
        r"Unable to locate credentials|NoCredentialsError|PartialCredentialsError)",
        "refused the credentials ({0})",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a key that may read and "
        "write this bucket, or store them with `dvc remote modify --local {remote} access_key_id ...`",
    ),
    (
        r"(NoSuchBucket|The specified bucket does not exist)",
        "has no bucket '{bucket}' (NoSuchBucket)",
        "create it (`aws s3 mb s3://{bucket}`, add --endpoint-url for a non-AWS server) or point the "
        "remote at an existing one with `dvc remote modify {remote} url s3://BUCKET/PATH`",
    ),
    (
        r"(Could not connect to the endpoint URL|Connection was closed|ConnectionResetError|"
        r"EndpointConnectionError|ServerDisconnectedError|Connect call failed|Read timeout|"
        r"Connection reset by peer|ClientOSError)",
        "could not be reached or dropped the connection ({0}){progress}",
        "check the network and the endpoint, then run the same command again: what was pushed is "
        "kept and skipped, nothing is trained again",
    ),
)


def describe_remote(name: str | None = None) -> tuple[str, str, str]:
    """The remote's name, URL and endpoint ("" where not set), as DVC's config has them."""
    name = name or dvc_command.value("remote", "default") or "(no default remote)"
    url = dvc_command.value("config", f"remote.{name}.url")
    endpoint = dvc_command.value("config", f"remote.{name}.endpointurl")
    return name, url, endpoint


def diagnose(output: str, returncode: int, command: str, remote: tuple[str, str, str]) -> str:
    """One line that says what failed and the fix, from a failed dvc command's output."""
    name, url, endpoint = remote
    bucket = re.sub(r"^[a-z0-9]+://([^/]+).*$", r"\1", url) if url else "?"
    where = f"remote '{name}' ({url or 'no URL'}{f', endpoint {endpoint}' if endpoint else ''})"
    failed = re.search(r"(\d+) files? failed to (?:upload|download)", output)
    pushed = re.search(r"(\d+) files? (?:pushed|fetched|downloaded)", output)
    progress = ""
    if failed:
        progress = f"; {failed.group(1)} file(s) not transferred"
        if pushed:
            progress += f", {pushed.group(1)} done"
    for pattern, problem, fix in FAULTS:
        match = re.search(pattern, output)
        if match:
            fields = {"remote": name, "bucket": bucket, "progress": progress}
            return f"{where} {problem.format(match.group(1), **fields)}: {fix.format(**fields)}"
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    reason = errors[-1].removeprefix("ERROR: ") if errors else f"exit status {returncode}"
    return f"`dvc {command}` failed: {reason}"


def run(args: list[str]) -> str:
    """Run `dvc <args>`, showing its output as it goes; its output. One-line StageError on failure."""
    if not args or args[0] not in COMMANDS:
        raise StageError(f"usage: python -m src.running.remote {{{','.join(COMMANDS)}}} [dvc's arguments]")
    returncode, output = dvc_command.stream(*args)
    if returncode != 0:
        remote = None
        if "-r" in args[:-1]:
            remote = args[args.index("-r") + 1]
        raise StageError(diagnose(output, returncode, " ".join(args), describe_remote(remote)))
    return output


def main() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    run_stage(main)
