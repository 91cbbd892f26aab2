"""src/ground/dvc_command.py: this environment's DVC, found without PATH's help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from src.ground import dvc_command
from tests.conftest import ROOT

BARE_PATH = "/usr/bin:/bin"  # a CI runner's, without the project's environment


def test_dvc_runs_with_a_path_that_does_not_hold_it() -> None:
    code = "from src.ground import dvc_command; print(dvc_command.run('version').splitlines()[0])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH, "PYTHONPATH": str(ROOT), "HOME": str(Path.home())},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DVC version:")


def test_stages_find_this_interpreter_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", BARE_PATH)
    env = dvc_command.environment()
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["DVC_NO_ANALYTICS"] == "1"


def test_a_failing_command_is_one_error_that_quotes_dvc() -> None:
    import pytest

    from src.ground.cli import StageError

    with pytest.raises(
        StageError, match=r"`\S*python\S* -m dvc no-such-command` failed \(exit status \d+\):"
    ):
        dvc_command.run("no-such-command")
    assert dvc_command.value("no-such-command") == ""
