"""Test scores of the study's own way of training, to check that the fast trainer changed nothing.

    python benchmarks/study_baseline.py [--models resnet simple_cnn] [--epochs N] [--out FILE] [--project DIR]
                                        [--pipeline-order]
    (or: make bench-accuracy MODELS="resnet simple_cnn")

For each model, in a fresh process, on the prepared splits (data/prepared: run `dvc repro
prepare` first): the same architecture, recipe (epochs, batch size, Adam, learning rate)
and seed as the train stage, trained the way the study did it: float32 arrays scaled to
[0, 1] in NumPy, `model.fit` on them, TensorFlow's default kernels and Keras's Adam, one
step per call. Then the test scores, beside the train stage's own
(reports/train/<id>/metrics.json) where it has run, and the difference in points.

--pipeline-order feeds the study's way the train stage's batches, in the train stage's order
(its seeded per-epoch shuffle of indices, scaled to float32 in [0, 1] on the way) instead of
Keras's own shuffle of the arrays. The two then draw the same initial weights, data order,
Dropout masks and augmentation (batch shards draw the whole batch's), so what differs is only
how each step is computed: the speed levers.

--project names another project directory (its params.yaml, data/prepared and reports);
the default is this repository. Ends with one JSON line per model. Takes as long as the
study did (about an hour on two CPU cores for all five models).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def study_style_model(config):  # type: ignore[no-untyped-def]
    """The study's model: the registry's layers on float input, without the uint8 scaling layer."""
    import keras

    from src.data import CLASSES, IMAGE_SHAPE
    from src.models import build_model

    built = build_model(config.builder, IMAGE_SHAPE, len(CLASSES), **config.builder_kwargs)
    model = keras.Sequential([keras.Input(IMAGE_SHAPE), *built.layers[2:]], name=built.name)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit_study_style(  # type: ignore[no-untyped-def]
    model, config, train, val, epochs: int, callbacks: list, pipeline_order_seed: int | None = None
) -> None:
    """`fit` on float32 arrays in [0, 1], as the study did (or on the train stage's batches, in its order)."""
    (x, y), (x_val, y_val) = train, val
    if pipeline_order_seed is None:
        data = {"x": x.astype("float32") / 255.0, "y": y.astype("int32"), "batch_size": config.batch_size}
    else:  # no float copy of the whole training set: the batches are scaled as they are drawn
        import tensorflow as tf

        from src.train import _datasets

        batches, _ = _datasets(x, y, x_val, y_val, config.batch_size, config.batch_size, pipeline_order_seed)
        data = {"x": batches.map(lambda images, labels: (tf.cast(images, tf.float32) / 255.0, labels))}
    model.fit(
        **data,
        epochs=epochs,
        validation_data=(x_val.astype("float32") / 255.0, y_val.astype("int32")),
        callbacks=callbacks,
        verbose=0,
    )


def worker(model_id: str, epochs: int | None, pipeline_order: bool = False) -> dict:
    """Train and test one model study-style, in this fresh process."""
    os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's own default, as the study ran
    import numpy as np

    from src.data import load_split
    from src.params import load_params
    from src.train import _epoch_line_callback, peak_rss_mib, scores, seed_everything

    params = load_params()
    config = params.models[model_id]
    epochs = config.epochs if epochs is None else epochs
    train, val, (x_test, y_test) = load_split("train"), load_split("val"), load_split("test")
    seed_everything(params.seed)
    model = study_style_model(config)

    print(f"{model_id}: training the study's way", file=sys.stderr, flush=True)
    started = time.perf_counter()  # progress on stderr: stdout carries the result
    order_seed = params.seed if pipeline_order else None
    fit_study_style(
        model, config, train, val, epochs, [_epoch_line_callback(epochs, file=sys.stderr)], order_seed
    )
    seconds = time.perf_counter() - started
    probabilities = model.predict(x_test.astype("float32") / 255.0, batch_size=500, verbose=0)
    return {
        "model": model_id,
        **scores(y_test, np.argmax(probabilities, axis=1)),
        "epochs": epochs,
        "data_order": "pipeline" if pipeline_order else "keras",
        "train_seconds": round(seconds, 1),
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    parser.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.out:
        args.out = args.out.resolve()
    os.chdir(args.project)  # params.yaml, the prepared splits and the reports are relative to it
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.pipeline_order)))
        return

    from src.data import PREPARED_DIR
    from src.params import load_params

    if not (PREPARED_DIR / "train.npz").exists():
        raise SystemExit(f"{PREPARED_DIR}/train.npz not found: run `dvc repro prepare` first")
    params = load_params()
    model_ids = args.models or list(params.models)
    unknown = sorted(set(model_ids) - set(params.models))
    if unknown:
        parser.error(f"unknown model ids {unknown}; params.yaml has {sorted(params.models)}")
    lines = []
    for model_id in model_ids:
        command = [sys.executable, __file__, "--worker", model_id, "--project", str(args.project)]
        command += ["--epochs", str(args.epochs)] if args.epochs else []
        command += ["--pipeline-order"] if args.pipeline_order else []
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"{model_id}: the study-style run failed (exit {done.returncode})")
        line = json.loads(done.stdout.strip().splitlines()[-1])
        metrics_file = Path("reports") / "train" / model_id / "metrics.json"
        pipeline = ""
        if metrics_file.exists():
            test = json.loads(metrics_file.read_text()).get("test", {})
            if test.get("epochs") == line["epochs"] and "accuracy" in test:
                line["pipeline_accuracy"] = test["accuracy"]
                line["accuracy_delta_points"] = round(100 * (test["accuracy"] - line["accuracy"]), 2)
                pipeline = (
                    f" | train stage {test['accuracy']:.4f} ({line['accuracy_delta_points']:+.2f} points)"
                )
        print(
            f"{model_id:15s} study-style accuracy {line['accuracy']:.4f}, macro F1 {line['f1']:.4f}, "
            f"{line['train_seconds']:.0f} s, {line['peak_rss_mib']} MiB{pipeline}",
            flush=True,
        )
        lines.append(line)
    for line in lines:
        print(json.dumps(line))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    main()
