"""Test scores of the study's own way of training, to check that the fast trainer changed nothing.

    python -m benchmarks accuracy [--models resnet simple_cnn] [--epochs N] [--out FILE]
                                  [--project DIR] [--pipeline-order] [--seeds 42 1 2] [--onednn]
    (or: make bench ARGS="accuracy --models resnet simple_cnn")

For each model, in a fresh process, on the prepared splits (data/prepared: run `dvc repro
prepare` first): the same architecture, recipe (epochs, batch size, Adam, learning rate)
and seed as the train stage, trained the way the study did it: float32 arrays scaled to
[0, 1] in NumPy, `model.fit` on them, TensorFlow's default kernels and Keras's Adam, one
step per call. Then the test scores, beside the train stage's own
(reports/train/<id>-<seed>/metrics.json) where it has run, and the difference in points.

--pipeline-order feeds the study's way the train stage's batches, in the train stage's order
(its seeded per-epoch shuffle of indices, scaled to float32 in [0, 1] on the way) instead of
Keras's own shuffle of the arrays. The two then draw the same initial weights, data order,
Dropout masks and augmentation (batch shards draw the whole batch's), so what differs is only
how each step is computed: the speed levers.

--seeds trains with each of these seeds in turn (initial weights, data order, Dropout masks,
augmentation; the validation split stays params.yaml's) and, for a seed other than the train
stage's, also trains the pipeline's way with it in a fresh process (the train stage's model,
settings and trainer, without writing models or reports). With several seeds it ends with the
mean and spread of both ways' scores and of their per-seed differences: at one seed, a model
whose score swings from epoch to epoch can differ by a few points for any change of
arithmetic, so a systematic difference shows only across seeds.

--onednn trains the study's way with TensorFlow's oneDNN kernels instead of its default Eigen
ones (TensorFlow's own default on CPUs with AVX-512 or AMX): the same code, recipe and
order, other rounding. Beside a run without it, this measures how far the study's own scores
move with the arithmetic alone.

--project names another project directory (its params.yaml, data/prepared and reports);
the default is this repository. Ends with one JSON line per model. Takes as long as the
study did (about an hour on two CPU cores for all five models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, choose_kernels, fit_study_style, run_worker, study_style_model

WAYS = ("study", "study-onednn", "pipeline")  # how a worker trains


def worker(
    model_id: str,
    epochs: int | None,
    pipeline_order: bool = False,
    seed: int | None = None,
    way: str = "study",
) -> dict:
    """Train and test one model in this fresh process: the study's way (with TensorFlow's
    default or its oneDNN kernels) or the pipeline's (the train stage's model and trainer)."""
    from src.ground.params import load_params

    params = load_params()
    config = params.models[model_id]
    choose_kernels(way, params.train)
    import numpy as np

    from src.ground.data import load_split
    from src.learning.callbacks import epoch_lines
    from src.learning.run_record import peak_rss_mib
    from src.learning.speed import onednn_enabled
    from src.learning.training import scores

    seed = params.seeds[0] if seed is None else seed
    epochs = config.epochs if epochs is None else epochs
    data, (x_test, y_test) = (load_split("train"), load_split("val")), load_split("test")
    progress = [epoch_lines(epochs, file=sys.stderr)]  # stderr: stdout carries the result
    print(f"{model_id}: training the {way.split('-')[0]}'s way, seed {seed}", file=sys.stderr, flush=True)
    model, history, seconds = _train(way, config, params, data, seed, epochs, progress, pipeline_order)
    probabilities = _predict(model, way, x_test, params.train.eval_batch_size)
    return {
        "model": model_id,
        **scores(y_test, np.argmax(probabilities, axis=1)),
        "epochs": epochs,
        "seed": seed,
        "way": way,
        "train_loss": history.history["loss"][-1],  # the last epoch's, as the train stage reports it
        "data_order": "pipeline" if pipeline_order or way == "pipeline" else "keras",
        "onednn": onednn_enabled(),
        "train_seconds": round(seconds, 1),
        "peak_rss_mib": peak_rss_mib(),
    }


def _train(
    way: str,
    config: Any,
    params: Any,
    data: tuple,
    seed: int,
    epochs: int,
    progress: list,
    pipeline_order: bool,
) -> tuple[Any, Any, float]:
    """The model trained one way, its Keras history, and the seconds its training took."""
    from src.learning.training import fit, prepare_model, seed_everything

    train, val = data
    if way == "pipeline":
        model = prepare_model(config, params.train, seed, params.train.threads)
        started = time.perf_counter()
        history = fit(model, config, params.train, train, val, seed, progress, epochs=epochs)
    else:
        seed_everything(seed)
        model = study_style_model(config)
        started = time.perf_counter()
        history = fit_study_style(
            model, config, train, val, epochs, progress, seed if pipeline_order else None
        )
    return model, history, time.perf_counter() - started


def _predict(model: Any, way: str, x_test: Any, eval_batch: int) -> Any:
    """Test-set probabilities: the pipeline's way on the uint8 images in its evaluation batches,
    the study's way on floats in [0, 1], 500 at a time."""
    if way == "pipeline":
        return model.predict(x_test, batch_size=eval_batch, verbose=0)
    return model.predict(x_test.astype("float32") / 255.0, batch_size=500, verbose=0)


def _run_worker(args: argparse.Namespace, model_id: str, seed: int, way: str) -> dict:
    command = ["--worker", model_id, "--project", str(args.project), "--seeds", str(seed), "--way", way]
    command += ["--epochs", str(args.epochs)] if args.epochs else []
    command += ["--pipeline-order"] if args.pipeline_order else []
    return run_worker("accuracy", *command, show_progress=True)


def _stage_accuracy(model_id: str, seed: int, epochs: int) -> float | None:
    """train@<id>-<seed>'s test accuracy (its reports/train/.../metrics.json), if it ran with these epochs."""
    from src.ground.paths import live_metrics_path

    metrics_file = live_metrics_path(model_id, seed)
    if not metrics_file.exists():
        return None
    test = json.loads(metrics_file.read_text()).get("test", {})
    return test["accuracy"] if test.get("epochs") == epochs and "accuracy" in test else None


def _spread(values: list[float]) -> str:
    """Mean +- sample standard deviation, in points."""
    import statistics

    points = [100 * value for value in values]
    sd = statistics.stdev(points) if len(points) > 1 else 0.0
    return f"{statistics.mean(points):.2f} +- {sd:.2f}"


def _arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks accuracy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--models", nargs="*", help="model ids from params.yaml (default: all)")
    parser.add_argument("--epochs", type=int, help="override every model's epochs (default: params.yaml's)")
    parser.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="project directory (default: this repository)"
    )
    parser.add_argument(
        "--pipeline-order",
        action="store_true",
        help="feed the train stage's batches in its order (see above)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds (default: params.yaml's seed)")
    parser.add_argument(
        "--onednn", action="store_true", help="the study's way with TensorFlow's oneDNN kernels (see above)"
    )
    parser.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=WAYS, default="study", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.out:
        args.out = args.out.resolve()
    return parser, args


def _seed_line(
    args: argparse.Namespace,
    model_id: str,
    seed: int,
    study_way: str,
    recorded_seeds: list[int],
    seeds: list[int],
) -> dict:
    """One model and seed the study's way, beside the train stage's (or the pipeline's) accuracy."""
    line = _run_worker(args, model_id, seed, study_way)
    pipeline_accuracy = _stage_accuracy(model_id, seed, line["epochs"])
    source = "train stage"
    if pipeline_accuracy is None and (seed not in recorded_seeds or len(seeds) > 1):
        pipeline_accuracy = _run_worker(args, model_id, seed, "pipeline")["accuracy"]
        source = "pipeline"
    pipeline = ""
    if pipeline_accuracy is not None:
        line["pipeline_accuracy"] = pipeline_accuracy
        line["accuracy_delta_points"] = round(100 * (pipeline_accuracy - line["accuracy"]), 2)
        pipeline = f" | {source} {pipeline_accuracy:.4f} ({line['accuracy_delta_points']:+.2f} points)"
    print(
        f"{model_id:15s} seed {seed:<5d} {line['way']}-style accuracy {line['accuracy']:.4f}, "
        f"macro F1 {line['f1']:.4f}, {line['train_seconds']:.0f} s, "
        f"{line['peak_rss_mib']} MiB{pipeline}",
        flush=True,
    )
    return line


def main(argv: list[str] | None = None) -> None:
    parser, args = _arguments(argv)
    os.chdir(args.project)  # params.yaml, the prepared splits and the reports are relative to it
    if args.worker:
        seed = args.seeds[0] if args.seeds else None
        print(json.dumps(worker(args.worker, args.epochs, args.pipeline_order, seed, args.way)))
        return

    from src.ground.params import load_params
    from src.ground.paths import split_path

    if not split_path("train").exists():
        raise SystemExit(f"{split_path('train')} not found: run `dvc repro prepare` first")
    params = load_params()
    model_ids = args.models or list(params.models)
    unknown = sorted(set(model_ids) - set(params.models))
    if unknown:
        parser.error(f"unknown model ids {unknown}; params.yaml has {sorted(params.models)}")
    seeds = args.seeds or params.seeds[:1]
    study_way = "study-onednn" if args.onednn else "study"
    lines = []
    for model_id in model_ids:
        lines += [_seed_line(args, model_id, seed, study_way, params.seeds, seeds) for seed in seeds]
        done = [line for line in lines if line["model"] == model_id and "pipeline_accuracy" in line]
        if len(done) > 1:
            print(
                f"{model_id:15s} {len(done)} seeds, test accuracy in points: {study_way} way "
                f"{_spread([line['accuracy'] for line in done])}, pipeline "
                f"{_spread([line['pipeline_accuracy'] for line in done])}, pipeline - {study_way} "
                f"{_spread([line['pipeline_accuracy'] - line['accuracy'] for line in done])}",
                flush=True,
            )
    for line in lines:
        print(json.dumps(line))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    main()
