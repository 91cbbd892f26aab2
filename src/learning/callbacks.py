"""Callbacks of a training run: Ctrl-C that always stops it, one line per epoch, the seed-and-
epoch draws, test scores per epoch, DVCLive curves and the backup of each completed epoch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# A keras.callbacks.Callback; Keras is imported inside the functions (it starts TensorFlow),
# and Keras ships no type information, so a callback is Any to the type checker.
Callback = Any


@contextlib.contextmanager
def ctrl_c_recorded() -> Iterator[list[int]]:
    """Record Ctrl-C (SIGINT) and SIGTERM (a scheduler's stop) while training, and raise
    KeyboardInterrupt as Ctrl-C does, so the stage stops with one line after its last backup.

    Under load we saw training go on after Ctrl-C: a KeyboardInterrupt raised while
    TensorFlow's native code runs can get lost there. The record lets `stop_on_ctrl_c` raise
    it again at the next batch.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def stop_on_ctrl_c(received: list[int]) -> Callback:
    import keras

    class StopOnCtrlC(keras.callbacks.Callback):
        def _check(self, *args: object, **kwargs: object) -> None:
            if received:
                raise KeyboardInterrupt

        on_train_batch_end = on_test_batch_end = on_epoch_end = _check

    return StopOnCtrlC()


def epoch_lines(epochs: int, file: Any = None) -> Callback:
    """One plain line per epoch for logs (CI, `dvc repro > log`): no progress bar, no control characters."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            values = "  ".join(f"{key} {float(value):.4f}" for key, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{epochs}  {values}  ({seconds:.1f} s)", file=file, flush=True)

    return EpochLine()


def curve_name(key: str) -> str:
    """DVCLive's name of a Keras log key: val_x -> eval/x, test_x -> test/x, x -> train/x."""
    for prefix, split in (("val_", "eval"), ("test_", "test")):
        if key.startswith(prefix):
            return f"{split}/{key.removeprefix(prefix)}"
    return f"train/{key}"


def log_epoch(live: Any, logs: dict[str, float]) -> None:
    """One epoch's scores into DVCLive's curves, then its next step."""
    for key, value in logs.items():
        live.log_metric(curve_name(key), float(value))
    live.next_step()


def epoch_curves(live: Any) -> Callback:
    """DVCLive's Keras callback, with test scores as their own split (`test/`)."""
    import keras

    class EpochCurves(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            log_epoch(live, logs or {})

    return EpochCurves()


def epoch_draws(seed_states: list[Any], epoch_variable: Any, draws_per_epoch: int) -> Callback:
    """Each epoch's data order and random draws from the seed and the epoch alone: the epoch
    number for the shuffle, and each seed generator's counter set to epoch × draws_per_epoch
    (its seed stays), so a resumed run draws what an uninterrupted one would."""
    import keras
    import numpy as np

    class EpochDraws(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            epoch_variable.assign(epoch)
            for state in seed_states:
                value = np.asarray(state.numpy())
                state.assign(np.array([value[0], epoch * draws_per_epoch], dtype=value.dtype))

    return EpochDraws()


def test_scores(score: Callable[[], tuple[dict[str, float], str]], predicted: list[str]) -> Callback:
    """After each epoch: `score()` gives the test scores and encoded predictions; the scores go
    into the logs as test_<name>, the predictions onto `predicted`. Reported, never used to
    choose anything (only the curves and the backup read them)."""
    import keras

    class TestScores(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            scores, encoded = score()
            predicted.append(encoded)
            if logs is not None:
                logs.update({f"test_{key}": value for key, value in scores.items()})

    return TestScores()


def backup_each_epoch(backup: Any, history: list[dict[str, float]], predicted: list[str]) -> Callback:
    """After each epoch: its logs appended to `history`, and the backup of the run replaced."""
    import keras

    class BackupEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            history.append({key: float(value) for key, value in (logs or {}).items()})
            backup.save(self.model, epoch + 1, history, predicted)

    return BackupEachEpoch()
