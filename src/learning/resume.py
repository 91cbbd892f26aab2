"""Resumable training with the bytes of an uninterrupted run.

A run keeps a backup of its last completed epoch (Keras's weights file: weights and optimizer
state; the epoch; every epoch's logged scores) outside DVC's outputs, under a key of
everything that decides its bytes. Run again after an interruption, it restores that epoch
and goes on; what the backup does not hold (data order, augmentation and dropout draws) is a
function of the seed and the epoch (`EpochDraws`), so the rest of the run computes what an
uninterrupted one would. The backup is removed once the run's outputs are written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.ground.files import write_json
from src.ground.paths import BACKUP_STATE, BACKUP_WEIGHTS, SRC_DIR, backup_dir

log = logging.getLogger(__name__)

# Draws per epoch and seed generator before two epochs' draws could overlap (the generators'
# counter is 32 bits wide, so epochs stay under 2**32 / DRAWS_PER_EPOCH = 4,096).
DRAWS_PER_EPOCH = 2**20
MAX_EPOCHS = 2**32 // DRAWS_PER_EPOCH


def code_files() -> list[Path]:
    """The project's modules this process has imported: the train stage's code deps."""
    root = SRC_DIR.resolve()
    files = set()
    for module in list(sys.modules.values()):
        path = Path(getattr(module, "__file__", None) or "/").resolve()
        if path.is_relative_to(root) and path.suffix == ".py":
            files.add(path)
    return sorted(files)


def backup_key(inputs: dict[str, Any], data_files: list[Path]) -> str:
    """A digest of what decides a run's bytes: its params, seed and versions (`inputs`), the
    code it imported and its data."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
    for path in [*code_files(), *sorted(data_files)]:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Restored:
    """Where a run starts: its first epoch to train and the logs of the epochs before it."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # each epoch's logged scores
    predicted: list[str] = field(default_factory=list)  # each epoch's test predictions, encoded


class Backup:
    """The last completed epoch of one run: `<key>/epoch-<n>/` folders, each made in a temporary
    folder and renamed into place whole, so an interruption at any moment leaves the previous
    epoch's backup intact."""

    def __init__(self, run: str, key: str) -> None:
        self.run_directory = backup_dir(run)
        self.directory = self.run_directory / key[:16]
        self.key = key

    def _epochs(self) -> list[Path]:
        found = self.directory.glob("epoch-*") if self.directory.is_dir() else []
        return sorted((path for path in found if path.name.removeprefix("epoch-").isdigit()), key=_number)

    def restore(self, model: Any) -> Restored:
        """Load the backup into the compiled `model` if it is this run's; else start at epoch 0."""
        for other in self.run_directory.glob("*") if self.run_directory.is_dir() else []:
            if other != self.directory:  # of other code, params or data: never used
                log.info("removing %s: a backup of other code, params or data", other)
                shutil.rmtree(other, ignore_errors=True)
        epochs = self._epochs()
        if not epochs:
            return Restored()
        latest = epochs[-1]
        state = json.loads((latest / BACKUP_STATE).read_text())
        if state.get("key") != self.key:
            raise RuntimeError(f"{latest} belongs to another run: remove {self.run_directory}")
        model.load_weights(latest / BACKUP_WEIGHTS)
        log.info("resuming after epoch %d from %s", state["epoch"], latest)
        return Restored(int(state["epoch"]), list(state["history"]), list(state["predicted"]))

    def save(self, model: Any, epoch: int, history: list[dict[str, float]], predicted: list[str]) -> None:
        """Keep the state after `epoch` epochs, then drop the older backups."""
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=self.directory, prefix=".epoch-"))
        try:
            model.save_weights(temporary / BACKUP_WEIGHTS)
            state = {"key": self.key, "epoch": epoch, "history": history, "predicted": predicted}
            write_json(temporary / BACKUP_STATE, state)
            os.replace(temporary, self.directory / f"epoch-{epoch}")
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        for older in self._epochs()[:-1]:
            shutil.rmtree(older, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.run_directory, ignore_errors=True)


def _number(path: Path) -> int:
    return int(path.name.removeprefix("epoch-"))
