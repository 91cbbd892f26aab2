"""Stage `train@<id>-<seed>`: train one model of params.yaml's `models` with one of its `seeds`.

`python -m src.stages.train <id> --seed <seed>` builds the model from the registry, trains it with
its recipe (validating every epoch, and scoring the test set every epoch as a report, never
as a choice), and writes `models/<id>-<seed>.keras` and `reports/train/<id>-<seed>/`
(DVCLive's curves: train/, eval/, test/; `metrics.json`; `predictions.csv`; `run.json`, what
decided the bytes), plus `reports/timings/<id>-<seed>.json` in git. An interrupted run
resumes from its last completed epoch with the same bytes (src/learning/resume.py).
Reproducibility and speed: docs/reproducibility.md, docs/performance.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

import numpy as np

from src.ground import predictions
from src.ground.cli import StageError, run_stage
from src.ground.data import load_split
from src.ground.files import write_json, write_text
from src.ground.params import ModelParams, Params, load_params
from src.ground.paths import (
    SPLIT_NAMES,
    epoch_predictions_path,
    live_dir,
    model_path,
    predictions_path,
    run_name,
    run_record_path,
    split_path,
    timing_path,
)
from src.learning import callbacks as callbacks_
from src.learning import resume, run_record, training
from src.learning.model_file import save_model
from src.learning.models import BUILDERS
from src.learning.speed import (
    configure_tensorflow,
    cpu_isa_record,
    onednn_enabled,
    thread_counts,
)

log = logging.getLogger(__name__)
Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def model_config(params: Params, model_id: str) -> ModelParams:
    if model_id not in params.models:
        raise StageError(f"unknown model id {model_id!r}: params.yaml's models has {sorted(params.models)}")
    return params.models[model_id]


def _check_batch(config: ModelParams, model_id: str, n_train: int) -> None:
    if config.batch_size > n_train:
        raise StageError(
            f"models.{model_id}.batch_size={config.batch_size} is larger than the {n_train:,} "
            "training images: lower it or raise prepare.max_images_per_split"
        )


def _inputs(model_id: str, seed: int, params: Params) -> dict[str, Any]:
    """What the run's bytes depend on besides code and data: the backup's key."""
    config = params.models[model_id]
    return {"model": model_id, "seed": seed, "train": params.train.model_dump(),
            "config": config.model_dump(), "versions": run_record.versions()}  # fmt: skip


def _callbacks(
    ctrl_c: list[int], live: Any, backup: resume.Backup, restored: resume.Restored, score: Any, epochs: int
) -> list[Any]:
    """In order: stop on Ctrl-C, test scores into the logs, curves, backup, one line per epoch."""
    callbacks = [
        callbacks_.stop_on_ctrl_c(ctrl_c),
        callbacks_.test_scores(score, restored.predicted),
        callbacks_.epoch_curves(live),
        callbacks_.backup_each_epoch(backup, restored.history, restored.predicted),
    ]
    if not sys.stdout.isatty():  # a terminal gets Keras's progress bar instead
        callbacks.append(callbacks_.epoch_lines(epochs))
    return callbacks


def _fit(model: Any, model_id: str, seed: int, params: Params, data: Splits, live: Any) -> dict[str, Any]:
    """Fit from the run's backup (or epoch 1) to the last epoch; seconds and epochs trained."""
    config, train_cfg = params.models[model_id], params.train
    (x_train, y_train), val, (x_test, y_test) = data
    training.build_for_backup(model)
    data_files = [split_path(split) for split in SPLIT_NAMES]
    backup = resume.Backup(
        run_name(model_id, seed), resume.backup_key(_inputs(model_id, seed, params), data_files)
    )
    restored = backup.restore(model)
    for logs in restored.history:  # the curves of the epochs the backup holds, as they were logged
        callbacks_.log_epoch(live, logs)

    def score() -> tuple[dict[str, float], str]:
        y_pred = _predict(model, x_test, train_cfg.eval_batch_size)
        return training.scores(y_test, y_pred), predictions.encode_epoch(y_pred)

    with callbacks_.ctrl_c_recorded() as ctrl_c:
        callbacks = _callbacks(ctrl_c, live, backup, restored, score, config.epochs)
        started = time.perf_counter()
        try:
            training.fit(model, config, train_cfg, (x_train, y_train), val, seed, callbacks,
                         1 if sys.stdout.isatty() else 0, initial_epoch=restored.epoch)  # fmt: skip
        except KeyboardInterrupt:
            stage = f"train@{run_name(model_id, seed)}"
            done = len(restored.history)  # the backup callback appends each completed epoch
            print(f"interrupted after epoch {done} of {config.epochs}: run the stage again "
                  f"(dvc repro {stage}) to resume from it", file=sys.stderr)  # fmt: skip
            raise
    return {"seconds": time.perf_counter() - started, "epochs": config.epochs - restored.epoch,
            "backup": backup, "predicted": restored.predicted}  # fmt: skip


def _predict(model: Any, x: np.ndarray, batch: int) -> np.ndarray:
    return np.argmax(model.predict(x, batch_size=batch, verbose=0), axis=1)


def _log_start(model_id: str, seed: int, config: ModelParams, model: Any, data: Splits) -> None:
    net = training.plain_model(model)
    shards = f" in {model.shards} shards side by side" if net is not model else ""
    log.info(
        "training %s (%s, %s parameters, seed %d) on %s images, validating on %s, %d epochs of batch %d%s",
        model_id, config.builder, f"{net.count_params():,}", seed, f"{len(data[0][1]):,}",
        f"{len(data[1][1]):,}", config.epochs, config.batch_size, shards,
    )  # fmt: skip


def _run_record(model_id: str, seed: int, train_cfg: Any, model: Any, config: ModelParams) -> dict[str, Any]:
    """What decided the bytes: hashed by DVC with the run's other outputs, so it holds nothing
    that differs between two machines or two runs that computed the same thing."""
    isa = cpu_isa_record(train_cfg.cpu_isa)
    net = training.plain_model(model)
    return {
        "model_id": model_id,
        "seed": seed,
        "device": train_cfg.device,
        "xla": bool(model.jit_compile),
        "onednn": onednn_enabled(),
        "fused_optimizer": training.fuses_adam(config, train_cfg),
        "cpu_shards": model.shards if net is not model else 1,
        "cpu_isa": {key: isa[key] for key in ("cpu_isa", "kernels_isa", "onednn_max_cpu_isa")},
        "threads": {"train_threads": train_cfg.threads, **thread_counts()},
        "versions": run_record.versions(),
    }


def _timing(fitted: dict[str, Any], n_train: int, cpu_isa: str) -> dict[str, Any]:
    """How long it took and where: beside the run, in git, outside what DVC hashes."""
    seconds, epochs = fitted["seconds"], fitted["epochs"]
    return {
        "train_seconds": round(seconds, 2),
        "train_images_per_second": round(epochs * n_train / seconds, 1) if epochs else None,
        "epochs_trained_here": fitted["epochs"],  # fewer than the recipe's after a resume
        "peak_rss_mib": run_record.peak_rss_mib(),
        "cpu_flags": cpu_isa_record(cpu_isa)["cpu_flags"],
        **run_record.host(),
    }


def _write_outputs(model_id: str, seed: int, model: Any, test: tuple[np.ndarray, np.ndarray],
                   params: Params, live: Any, predicted: list[str]) -> dict[str, Any]:  # fmt: skip
    """The test predictions, final scores and the model file."""
    config, net = params.models[model_id], training.plain_model(model)
    x_test, y_test = test
    y_pred = _predict(model, x_test, params.train.eval_batch_size)
    metrics = {
        **training.scores(y_test, y_pred),
        "param_count": int(net.count_params()),
        "trainable_params": run_record.count_weights(net.trainable_weights),
        "non_trainable_params": run_record.count_weights(net.non_trainable_weights),
        "epochs": config.epochs,
    }
    for key, value in metrics.items():
        live.log_metric(f"test/{key}", value, plot=False)
    write_text(predictions_path(model_id, seed), predictions.to_csv(y_test, y_pred))
    write_text(epoch_predictions_path(model_id, seed), predictions.epochs_to_tsv(predicted))
    save_model(net, model_path(model_id, seed))
    return metrics


def train(model_id: str, params: Params, seed: int | None = None) -> dict[str, Any]:
    """Train and evaluate one model with one seed (default: the first of params.yaml's
    `seeds`), resuming from its backup if one is there; write its model file and reports."""
    config = model_config(params, model_id)
    seed = params.seeds[0] if seed is None else seed
    train_split, val_split, test_split = (load_split(split) for split in SPLIT_NAMES)
    data: Splits = (train_split, val_split, test_split)
    _check_batch(config, model_id, len(data[0][1]))
    from dvclive import Live

    try:
        model = training.prepare_model(config, params.train, seed, params.train.threads)
    except StageError as err:
        raise StageError(f"models.{model_id}: {err}") from None
    if params.train.jit_compile and not model.jit_compile:
        log.info("%s: XLA is not available for this model's layers; training without it", model_id)
    out_dir = live_dir(model_id, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _log_start(model_id, seed, config, model, data)
    with Live(str(out_dir), dvcyaml=None, save_dvc_exp=False) as live:
        live.log_params({"model_id": model_id, "seed": seed, **config.model_dump()})
        fitted = _fit(model, model_id, seed, params, data, live)
        metrics = _write_outputs(model_id, seed, model, data[2], params, live, fitted["predicted"])
    write_json(run_record_path(model_id, seed), _run_record(model_id, seed, params.train, model, config))
    write_json(timing_path(model_id, seed), _timing(fitted, len(data[0][1]), params.train.cpu_isa))
    fitted["backup"].clear()  # every output is written: the run is complete
    log.info("%s: test accuracy %.4f, macro F1 %.4f, %.0f s of training", model_id,
             metrics["accuracy"], metrics["f1"], fitted["seconds"])  # fmt: skip
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Train and evaluate one model of params.yaml (stage train@<id>-<seed>)."
    )
    parser.add_argument("model_id", help="a key of params.yaml's models")
    parser.add_argument("--seed", type=int, help="the run's seed (default: the first of params.yaml's seeds)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    params = load_params(builders=BUILDERS)
    configure_tensorflow(params.train.onednn, params.train.cpu_isa)
    training.select_device(params.train.device)
    train(args.model_id, params, args.seed)


if __name__ == "__main__":
    run_stage(main)
