"""The mechanics of training (src/learning/training.py): scores, Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

from src.learning.training import scores

keras = pytest.importorskip("keras")


def test_scores_are_macro_averaged() -> None:
    y_true = np.array([0, 0, 0, 1])
    y_pred = np.array([0, 0, 1, 1])
    result = scores(y_true, y_pred)
    assert result["accuracy"] == 0.75
    # only classes 0 and 1 occur; the other eight count as 0 in the macro mean (zero_division=0)
    assert result["precision"] == pytest.approx((1.0 + 0.5) / 10, abs=1e-6)
    assert result["recall"] == pytest.approx((2 / 3 + 1.0) / 10, abs=1e-6)


def test_ctrl_c_swallowed_during_a_step_still_stops_training() -> None:
    import contextlib
    import signal

    from src.learning.callbacks import ctrl_c_recorded, stop_on_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_recorded() as received:
        callback = stop_on_ctrl_c(received)
        callback.on_train_batch_end(0)  # nothing received: training goes on
        with contextlib.suppress(KeyboardInterrupt):  # what native code sometimes does with it
            signal.raise_signal(signal.SIGINT)  # Ctrl-C; the handler runs right away
        with pytest.raises(KeyboardInterrupt):
            callback.on_train_batch_end(1)
    assert signal.getsignal(signal.SIGINT) is before
