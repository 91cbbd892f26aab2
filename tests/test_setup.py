"""`make setup` on the machines people have: scripts/setup-venv with stand-in interpreters on PATH.

Each case runs the script with a PATH of its own that holds only stand-ins (shell scripts that
answer as a Python of some version would) and the few real tools it needs, so what the test
machine has installed does not leak in. The uv way runs uv for real with an installed Python,
and with downloads off (UV_PYTHON_DOWNLOADS=never), as on a machine without internet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "setup-venv"
BASH = shutil.which("bash") or "/bin/bash"
REAL_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def _stand_in(directory: Path, name: str, version: str, venv: bool = True) -> Path:
    """A `name` on PATH that reports `version`, and fails `import venv, ensurepip` unless `venv`."""
    path = directory / name
    refuse = "" if venv else '*"import venv"*) exit 1 ;;'
    path.write_text(f'#!{BASH}\ncase "$*" in {refuse} *) echo {version} ;; esac\n')
    path.chmod(0o755)
    return path


@pytest.fixture()
def bare_path(tmp_path: Path) -> Path:
    """A PATH directory with `uname` and nothing else."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "uname").symlink_to(shutil.which("uname") or "/bin/uname")
    return directory


def _setup(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    own = ("PYTHON", "EXTRAS", "VENV", "SETUP_WITH", "VIRTUAL_ENV", "UV_PYTHON")  # only the test's own
    environment = {key: value for key, value in os.environ.items() if key not in own}
    environment.update(PATH=str(path), **env)  # the rest (certificates, proxies) as the machine has it
    return subprocess.run(
        [BASH, str(SCRIPT), *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_python_3_14_alone_stops_at_once_with_the_fixes(bare_path: Path, tmp_path: Path) -> None:
    _stand_in(bare_path, "python3", "3.14")
    started = time.perf_counter()
    result = _setup(bare_path, VENV=str(tmp_path / "venv"), SETUP_WITH="pip")
    assert time.perf_counter() - started < 1.0
    assert _one_line(result) == (
        "error: no Python 3.11 to 3.13 found (python3 is 3.14); TensorFlow 2.21 has wheels for 3.11 to "
        "3.13 only: install Python 3.13 (uv python install 3.13, or your distribution's python3.13 "
        "package) or point PYTHON= at one, e.g. make setup PYTHON=/usr/bin/python3.13"
    )
    assert not (tmp_path / "venv").exists()


def test_no_python_at_all(bare_path: Path, tmp_path: Path) -> None:
    assert "(no python3 on PATH)" in _one_line(
        _setup(bare_path, VENV=str(tmp_path / "venv"), SETUP_WITH="pip")
    )


def test_a_fitting_version_is_preferred_over_python3(bare_path: Path) -> None:
    _stand_in(bare_path, "python3", "3.14")
    _stand_in(bare_path, "python3.12", "3.12")
    (bare_path / "python3.13").write_text(
        f"#!{BASH}\necho 'pyenv: python3.13: command not found' >&2; exit 127\n"
    )
    (bare_path / "python3.13").chmod(0o755)  # a pyenv shim of a version that is not active
    result = _setup(bare_path, "--print-python", SETUP_WITH="pip")
    assert result.returncode == 0 and result.stdout == "python3.12\n"


def test_python_variable_wins_and_is_checked(bare_path: Path) -> None:
    _stand_in(bare_path, "python3.12", "3.12")
    chosen = _stand_in(bare_path, "python3", "3.11")
    assert _setup(bare_path, "--print-python", PYTHON=str(chosen)).stdout == f"{chosen}\n"
    too_new = _stand_in(bare_path, "py314", "3.14")
    line = _one_line(_setup(bare_path, PYTHON=str(too_new), VENV=str(bare_path / "venv")))
    assert line.startswith(
        f"error: PYTHON={too_new} is Python 3.14; TensorFlow 2.21 has wheels for Python 3.11"
    )


def test_a_python_without_the_venv_module_names_the_package(bare_path: Path, tmp_path: Path) -> None:
    _stand_in(bare_path, "python3", "3.12", venv=False)
    line = _one_line(_setup(bare_path, VENV=str(tmp_path / "venv"), SETUP_WITH="pip"))
    assert line == (
        "error: python3 (3.12) has no venv module with ensurepip: install python3.12-venv (Debian, "
        "Ubuntu: apt install python3.12-venv), or install uv (https://docs.astral.sh/uv/) and run make "
        "setup again"
    )


@pytest.mark.parametrize(("system", "machine"), [("Linux", "aarch64"), ("Darwin", "x86_64")])
def test_a_platform_without_tensorflow_wheels(tmp_path: Path, system: str, machine: str) -> None:
    directory = tmp_path / "bin"
    directory.mkdir()
    uname = directory / "uname"
    uname.write_text(f'#!{BASH}\ncase "$1" in -s) echo {system} ;; -m) echo {machine} ;; esac\n')
    uname.chmod(0o755)
    _stand_in(directory, "python3", "3.12")
    line = _one_line(_setup(directory, VENV=str(tmp_path / "venv")))
    assert line.startswith(f"error: TensorFlow 2.21 publishes no wheels for {system} {machine} (it does for")


def test_an_old_environment_of_another_python_is_named(bare_path: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _stand_in(venv / "bin", "python", "3.14")
    _stand_in(bare_path, "python3", "3.12")
    line = _one_line(_setup(bare_path, VENV=str(venv), SETUP_WITH="pip"))
    assert (
        line
        == f"error: {venv} holds Python 3.14, which TensorFlow 2.21 does not support: rm -rf {venv} "
        + ("and run make setup again")
    )


def test_unknown_extras_are_refused(bare_path: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(REAL_PYTHON)
    result = _setup(bare_path, VENV=str(venv), SETUP_WITH="pip", EXTRAS="s4")
    assert result.returncode == 1
    assert (
        "error: EXTRAS names ['s4'], which pyproject.toml does not define (it has ['dev', 's3'])"
        in result.stderr
    )


def _uv() -> str | None:
    beside_python = Path(sys.executable).parent / "uv"
    return str(beside_python) if beside_python.exists() else shutil.which("uv")


@pytest.mark.skipif(_uv() is None, reason="uv is not installed")
def test_uv_makes_the_environment_with_an_installed_python(bare_path: Path, tmp_path: Path) -> None:
    (bare_path / "uv").symlink_to(_uv())
    _stand_in(bare_path, "python3", "3.14")  # the machine's python3 does not fit ...
    (bare_path / REAL_PYTHON.name).symlink_to(REAL_PYTHON)  # ... an installed python3.11 does
    venv = tmp_path / "venv"
    result = _setup(bare_path, "--venv-only", VENV=str(venv), UV_PYTHON_DOWNLOADS="never", UV_NO_CACHE="1")
    assert result.returncode == 0, result.stderr
    version = subprocess.run([venv / "bin" / "python", "-c", "import sys, pip; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert (
        version.stdout.strip() == f"({sys.version_info.major}, {sys.version_info.minor})"
    )  # with pip (--seed)


@pytest.mark.skipif(_uv() is None, reason="uv is not installed")
def test_uv_with_no_fitting_python_and_no_downloads_stops_with_one_line(
    bare_path: Path, tmp_path: Path
) -> None:
    (bare_path / "uv").symlink_to(_uv())
    _stand_in(bare_path, "python3", "3.14")
    env = {
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CACHE": "1",
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "none"),
    }
    line = _one_line(_setup(bare_path, VENV=str(tmp_path / "venv"), **env))
    assert line.startswith(
        "error: uv found no Python 3.11 to 3.13 (python3 is 3.14) and could not download one:"
    )
