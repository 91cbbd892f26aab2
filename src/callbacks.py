"""Callbacks of a training run: Ctrl-C that always stops it, one line per epoch, DVCLive.

ctrl_c_recorded() (a context), stop_on_ctrl_c(received), epoch_lines(epochs), dvclive_callback(live)
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any


@contextlib.contextmanager
def ctrl_c_recorded():  # type: ignore[no-untyped-def]
    """Record Ctrl-C while training, besides raising KeyboardInterrupt as usual.

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

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_on_ctrl_c(received: list[int]):  # type: ignore[no-untyped-def]
    import keras

    class StopOnCtrlC(keras.callbacks.Callback):
        def _check(self, *args: object, **kwargs: object) -> None:
            if received:
                raise KeyboardInterrupt

        on_train_batch_end = on_test_batch_end = on_epoch_end = _check

    return StopOnCtrlC()


def epoch_lines(epochs: int, file: Any = None):  # type: ignore[no-untyped-def]
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


def dvclive_callback(live):  # type: ignore[no-untyped-def]
    from dvclive.keras import DVCLiveCallback

    return DVCLiveCallback(live=live)
