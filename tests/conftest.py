"""Shared fixtures: tiny data in the official binary layout, built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from src.ground import fake_cifar
from src.running.tiny_project import IMAGES_PER_BATCH, ROOT, VAL_SIZE, tiny_params, write_params

# Keep TensorFlow's start-up chatter out of test logs, and DVC off the network.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# In-process tests import TensorFlow once; give it the kernels the train stage picks by default
# (params.yaml's train.onednn), before any test module imports it,
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # and the instruction set of train.cpu_isa: avx2


def pinned(package: str) -> str:
    """The version requirements.lock pins for `package`."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return next(line.split("==", 1)[1] for line in lines if line.split("==", 1)[0] == package)


@pytest.fixture(scope="session")
def tiny_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_cifar.write_tarball(
        tmp_path_factory.mktemp("tarball") / "cifar-10-binary.tar.gz", IMAGES_PER_BATCH
    )


@pytest.fixture(scope="session")
def project_params() -> dict[str, Any]:
    """params.yaml of the repository, as committed."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture()
def params_dict(project_params: dict[str, Any], tiny_tarball: Path) -> dict[str, Any]:
    return tiny_params(project_params, tiny_tarball)


@pytest.fixture(scope="session")
def prepared_project(tmp_path_factory: pytest.TempPathFactory, project_params, tiny_tarball) -> Path:
    """A directory with params.yaml and data/prepared/ made by the real prepare stage, once."""
    from src.ground.data import PREPARED_DIR
    from src.stages.download import TARGET
    from src.stages.prepare import read_tarball, save_splits, split

    directory = tmp_path_factory.mktemp("prepared")
    params = tiny_params(project_params, tiny_tarball)
    write_params(directory, params)
    (directory / TARGET.parent).mkdir(parents=True)
    shutil.copy(tiny_tarball, directory / TARGET)
    splits = split(read_tarball(directory / TARGET, IMAGES_PER_BATCH), VAL_SIZE, params["seed"])
    save_splits(splits, directory / PREPARED_DIR)
    return directory


@pytest.fixture()
def in_prepared_project(prepared_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory holding a copy of the prepared project; the test runs inside it."""
    shutil.copytree(prepared_project, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A real S3 API on 127.0.0.1 (moto's server, credentials enforced) and its throwaway key in
    the environment, as a team's CI secrets would be."""
    pytest.importorskip("moto.server")
    pytest.importorskip("dvc_s3")
    from tests import s3_server

    server = s3_server.start()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.REGION)
    yield server
    server.stop()
