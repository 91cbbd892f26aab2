"""Stage `train@<id>-<seed>`: train one model of params.yaml's `models` with one of its
`seeds`, then evaluate it on test.

`python -m src.train <id> --seed <seed>` builds the model from the registry in src/models.py,
trains it with that model's recipe on the prepared train split (validating on the val split
every epoch, logged with DVCLive), and writes:

- `models/<id>-<seed>.keras`: the trained model (it takes raw uint8 images), saved under a
  temporary name and renamed, so it is never half-written, and without a save date
  (src/model_file.py);
- `reports/train/<id>-<seed>/`: DVCLive's per-epoch curves, `metrics.json` with the test
  scores and parameter counts, the test predictions (`predictions.csv`), and `run.json`
  (written last, atomically) with what decided the arithmetic: device, kernels, batch
  shards, thread pools, library versions. DVCLive writes as training goes; DVC records the
  stage only once it has finished, and reruns it from scratch after an interruption.
- `reports/timings/<id>-<seed>.json`: the training time, peak memory and the machine (CPU,
  its flags, cores, GPUs), tracked by git, not by DVC: DVC's outputs above are a function of
  the stage's inputs alone, so an identical rerun leaves `dvc.lock` as it was.

Everything is seeded and, unless `train.jit_compile` is on, TensorFlow's ops are
deterministic; the batch split (`cpu_shards`), the CPU kernels' instruction set
(`train.cpu_isa`) and the device (`train.device`; `cpu` hides any GPU) come from
params.yaml, never from the machine, as does the thread count (`train.threads`). So the same
code, params, data and library versions give the same bytes on any x86-64 CPU with AVX2,
Intel or AMD, whatever its core count (tests/test_reproducible.py);
GPUs compute otherwise, which is why the device is a param (DVC keeps GPU runs apart). The
mechanics of training are in src/training.py, the speed levers in src/speed/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

import numpy as np

from src import callbacks as callbacks_
from src import predictions, training
from src.cli import StageError, run_stage
from src.data import load_split
from src.files import write_json, write_text
from src.model_file import save_model
from src.models import BUILDERS
from src.params import ModelParams, Params, load_params
from src.paths import live_dir, model_path, predictions_path, timing_path
from src.speed import (
    configure_tensorflow,
    cpu_isa_record,
    onednn_enabled,
    thread_counts,
)

log = logging.getLogger(__name__)


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


def train(model_id: str, params: Params, seed: int | None = None) -> dict[str, Any]:
    """Train and evaluate one model with one seed (default: the first of params.yaml's
    `seeds`); write its model file and reports. Returns its metrics."""
    config = model_config(params, model_id)
    seed = params.seeds[0] if seed is None else seed
    x_train, y_train = load_split("train")
    x_val, y_val = load_split("val")
    x_test, y_test = load_split("test")
    _check_batch(config, model_id, len(y_train))
    train_cfg = params.train
    threads = train_cfg.threads

    from dvclive import Live

    try:
        model = training.prepare_model(config, train_cfg, seed, threads)
    except StageError as err:
        raise StageError(f"models.{model_id}: {err}") from None
    net = training.plain_model(model)
    if train_cfg.jit_compile and not model.jit_compile:
        log.info("%s: XLA is not available for this model's layers; training without it", model_id)
    out_dir = live_dir(model_id, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    interactive = sys.stdout.isatty()
    log.info(
        "training %s (%s, %s parameters, seed %d) on %s images, validating on %s, %d epochs of batch %d%s",
        model_id,
        config.builder,
        f"{net.count_params():,}",
        seed,
        f"{len(y_train):,}",
        f"{len(y_val):,}",
        config.epochs,
        config.batch_size,
        f" in {model.shards} shards side by side" if net is not model else "",
    )
    with Live(str(out_dir), dvcyaml=None, save_dvc_exp=False) as live:
        live.log_params({"model_id": model_id, "seed": seed, **config.model_dump()})
        with callbacks_.ctrl_c_recorded() as ctrl_c:
            callbacks = [callbacks_.stop_on_ctrl_c(ctrl_c), callbacks_.dvclive_callback(live)]
            if not interactive:
                callbacks.append(callbacks_.epoch_lines(config.epochs))
            verbose = 1 if interactive else 0  # a terminal gets Keras's progress bar
            started = time.perf_counter()
            training.fit(
                model, config, train_cfg, (x_train, y_train), (x_val, y_val), seed, callbacks, verbose
            )
            train_seconds = time.perf_counter() - started

        probabilities = model.predict(x_test, batch_size=train_cfg.eval_batch_size, verbose=0)
        y_pred = np.argmax(probabilities, axis=1)
        metrics = {
            **training.scores(y_test, y_pred),
            "param_count": int(net.count_params()),
            "trainable_params": training.count_weights(net.trainable_weights),
            "non_trainable_params": training.count_weights(net.non_trainable_weights),
            "epochs": config.epochs,
        }
        for key, value in metrics.items():
            live.log_metric(f"test/{key}", value, plot=False)
        write_text(predictions_path(model_id, seed), predictions.to_csv(y_test, y_pred))

        save_model(net, model_path(model_id, seed))
    isa = cpu_isa_record(train_cfg.cpu_isa)
    # What decided the bytes: hashed by DVC with the run's other outputs, so it holds nothing
    # that differs between two machines or two runs that computed the same thing.
    run = {
        "model_id": model_id,
        "seed": seed,
        "device": train_cfg.device,
        "xla": bool(model.jit_compile),
        "onednn": onednn_enabled(),
        "fused_optimizer": training.fuses_adam(config, train_cfg),
        "cpu_shards": model.shards if net is not model else 1,
        "cpu_isa": {key: isa[key] for key in ("cpu_isa", "kernels_isa", "onednn_max_cpu_isa")},
        "threads": {"train_threads": threads, **thread_counts()},
        "versions": training.versions(),
    }
    write_json(out_dir / "run.json", run)
    # How long it took and where: beside the run, in git, outside what DVC hashes.
    timing = {
        "train_seconds": round(train_seconds, 2),
        "train_images_per_second": round(config.epochs * len(y_train) / train_seconds, 1),
        "peak_rss_mib": training.peak_rss_mib(),
        "cpu_flags": isa["cpu_flags"],
        **training.host(),
    }
    write_json(timing_path(model_id, seed), timing)
    log.info(
        "%s: test accuracy %.4f, macro F1 %.4f, %.0f s of training",
        model_id,
        metrics["accuracy"],
        metrics["f1"],
        train_seconds,
    )
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
