"""Resumable training (src/learning/resume.py): an interrupted run, run again, ends with the
bytes of an uninterrupted one; a k-epoch run is the first k epochs of a longer one."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from src.ground.paths import BACKUPS_DIR, live_dir, model_path
from src.learning import resume
from tests.conftest import ROOT

keras = pytest.importorskip("keras")

MODEL = "cnn_da_dropout"  # augmentation, dropout and batch shards: every draw a resume must repeat
EPOCHS = 3


def _set_recipe(epochs: int, **changes: object) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    # batch 4: 75 steps an epoch, so a signal sent as an epoch ends lands inside the next one
    params["models"][MODEL].update(epochs=epochs, batch_size=4, **changes)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _outputs() -> dict[str, str]:
    """sha256 of every file the stage writes under DVC: model file, curves, metrics, predictions."""
    out = live_dir(MODEL, 42)
    files = [model_path(MODEL, 42), *sorted(path for path in out.rglob("*") if path.is_file())]
    return {path.as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def _stage(stop_after_epoch: int | None = None, how: int = signal.SIGTERM) -> tuple[int, str]:
    """The real stage in its own process; with `stop_after_epoch`, `how` is sent to it as soon
    as it reports that epoch done (the signal then lands in the next epoch). Exit status, stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "src.stages.train", MODEL],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if stop_after_epoch is not None and line.startswith(f"epoch {stop_after_epoch}/"):
            process.send_signal(how)
            break
    _, stderr = process.communicate()
    return process.returncode, stderr


@pytest.fixture(scope="module")
def uninterrupted(prepared_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The digests of the run nobody interrupted."""
    directory = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(prepared_project, directory, dirs_exist_ok=True)
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        _set_recipe(EPOCHS)
        status, stderr = _stage()
        assert status == 0, stderr
        return _outputs()
    finally:
        os.chdir(cwd)


@pytest.mark.slow
@pytest.mark.parametrize(
    "interruptions",
    [
        [(1, signal.SIGTERM)],  # a scheduler's stop, in epoch 2
        [(2, signal.SIGINT)],  # Ctrl-C, in the last epoch
        [(1, signal.SIGKILL), (2, signal.SIGKILL)],  # killed twice, no chance to clean up
    ],
    ids=["sigterm-epoch2", "sigint-epoch3", "sigkill-twice"],
)
def test_an_interrupted_run_resumes_to_the_same_bytes(
    in_prepared_project: Path, uninterrupted: dict[str, str], interruptions: list[tuple[int, int]]
) -> None:
    _set_recipe(EPOCHS)
    for epoch, how in interruptions:
        status, stderr = _stage(epoch, how)
        assert status != 0, "the run ended before the signal reached it"
        if how != signal.SIGKILL:
            assert f"interrupted after epoch {epoch} of {EPOCHS}" in stderr, stderr
            assert "to resume from it" in stderr
        assert (BACKUPS_DIR / f"{MODEL}-42").is_dir()
    status, stderr = _stage()
    assert status == 0, stderr
    assert f"resuming after epoch {interruptions[-1][0]}" in stderr
    assert _outputs() == uninterrupted
    assert not (BACKUPS_DIR / f"{MODEL}-42").exists()  # removed once the run is complete


@pytest.mark.slow
def test_a_shorter_run_is_the_start_of_a_longer_one(in_prepared_project: Path) -> None:
    """Every curve (train, validation, test) of a 2-epoch run, byte for byte, is the first two
    rows of the 3-epoch run's, so one long run shows every shorter budget."""
    curves = {}
    for epochs in (EPOCHS - 1, EPOCHS):
        _set_recipe(epochs)
        status, stderr = _stage()
        assert status == 0, stderr
        directory = live_dir(MODEL, 42) / "plots" / "metrics"
        curves[epochs] = {
            path.relative_to(directory).as_posix(): path.read_text().splitlines()
            for path in sorted(directory.rglob("*.tsv"))
        }
    assert {"train/accuracy.tsv", "eval/accuracy.tsv", "test/accuracy.tsv", "test/f1.tsv"} <= set(curves[3])
    assert set(curves[2]) == set(curves[3])
    for name, rows in curves[3].items():
        assert len(rows) == 1 + EPOCHS and curves[2][name] == rows[:EPOCHS], name


def _tiny_model():  # type: ignore[no-untyped-def]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_a_backup_of_other_inputs_is_removed_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _tiny_model()
    resume.Backup("m-1", "a" * 64).save(model, 2, [{"loss": 1.0}, {"loss": 0.5}], ["01", "11"])
    restored = resume.Backup("m-1", "a" * 64).restore(_tiny_model())
    assert restored.epoch == 2 and restored.history == [{"loss": 1.0}, {"loss": 0.5}]
    assert restored.predicted == ["01", "11"]
    assert resume.Backup("m-1", "b" * 64).restore(_tiny_model()).epoch == 0  # other code or params
    assert not (BACKUPS_DIR / "m-1" / ("a" * 16)).exists()


def test_a_backup_restores_weights_and_optimizer_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _tiny_model()
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
    resume.Backup("m-1", "k" * 64).save(model, 1, [{"loss": 0.1}], ["0"])
    fresh = _tiny_model()
    resume.Backup("m-1", "k" * 64).restore(fresh)
    for saved, loaded in zip(model.variables + model.optimizer.variables,
                             fresh.variables + fresh.optimizer.variables, strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


def test_an_interruption_while_saving_keeps_the_previous_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _tiny_model()
    backup = resume.Backup("m-1", "k" * 64)
    backup.save(model, 1, [{"loss": 0.1}], ["0"])

    def dies_while_writing(path: Path) -> None:
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save_weights", dies_while_writing)
    with pytest.raises(KeyboardInterrupt):
        backup.save(model, 2, [{"loss": 0.1}, {"loss": 0.05}], ["0", "1"])
    assert resume.Backup("m-1", "k" * 64).restore(_tiny_model()).epoch == 1
    assert [path.name for path in backup.directory.iterdir()] == ["epoch-1"]


def test_the_key_covers_code_params_and_data(tmp_path: Path) -> None:
    data = tmp_path / "train.npz"
    data.write_bytes(b"images")
    key = resume.backup_key({"seed": 42}, [data])
    assert key == resume.backup_key({"seed": 42}, [data])
    assert key != resume.backup_key({"seed": 1}, [data])
    data.write_bytes(b"other images")
    assert key != resume.backup_key({"seed": 42}, [data])
    assert ROOT / "src" / "learning" / "resume.py" in resume.code_files()
