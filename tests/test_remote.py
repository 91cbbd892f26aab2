"""One line per remote fault (src/running/remote.py), from DVC's own output; the real faults against a
local S3 server are in tests/test_pipeline.py."""

from __future__ import annotations

import pytest

from src.ground.cli import StageError
from src.running.remote import diagnose, run

REMOTE = ("team", "s3://team/cifar10", "https://minio.example.org")
WHERE = "remote 'team' (s3://team/cifar10, endpoint https://minio.example.org)"


def test_a_missing_plugin_names_the_setup_command() -> None:
    output = "ERROR: unexpected error - s3 is supported, but requires 'dvc-s3' to be installed"
    line = diagnose(output, 255, "push", REMOTE)
    assert line == f"{WHERE} needs DVC's dvc-s3 plugin, which is not installed: run make setup EXTRAS=s3 " + (
        "(dvc-s3), or pip install the plugin pinned in requirements.lock"
    )


def test_a_lost_connection_counts_what_was_and_was_not_pushed() -> None:
    output = (
        "ERROR: failed to transfer 'abc' - Could not connect to the endpoint URL: \"https://x/y\"\n"
        "ERROR: failed to push data to the cloud - 4 files failed to upload\n"
    )
    line = diagnose(output, 1, "push", REMOTE)
    assert line.startswith(f"{WHERE} could not be reached or dropped the connection (Could not connect")
    assert "; 4 file(s) not transferred: check the network" in line


def test_an_unknown_failure_keeps_dvcs_last_error() -> None:
    output = "ERROR: first\nERROR: failed to reproduce 'train@x': something else\n"
    assert diagnose(output, 1, "repro --pull", REMOTE) == (
        "`dvc repro --pull` failed: failed to reproduce 'train@x': something else"
    )


def test_only_dvcs_remote_commands_are_run() -> None:
    with pytest.raises(
        StageError, match=r"usage: python -m src.running.remote \{push,pull,fetch,repro,status\}"
    ):
        run(["gc", "-w"])
