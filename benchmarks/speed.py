"""Training speed: the study's way of training against the pipeline's trainer, side by side.

    python -m benchmarks speed [--models resnet simple_cnn] [--images 6000] [--epochs 3]
                               [--rounds 2] [--levers [LEVER ...]] [--full]
    (or: make bench ARGS="speed --levers")

For each model, on the same prepared images (data/prepared/train.npz, or synthetic ones if
the pipeline has not run), with the same architecture, batch size and optimizer:

- baseline: what the study did: float32 arrays scaled to [0, 1] in NumPy, `model.fit` on
  them with batch 32, validating on a fifth as many images every epoch;
- pipeline: `src.learning.training.prepare_model` + `src.learning.training.fit` with params.yaml's
  `train` settings
  and the model's `cpu_shards` (uint8 data, scaling inside the model, in-memory tf.data,
  steps_per_execution, oneDNN kernels, fused Adam, batch shards side by side), exactly as
  the train stage runs them.

With --levers, the pipeline also runs with each lever of src/learning/speed/ switched on its own (oneDNN
off, plain Keras Adam, steps_per_execution 1, XLA on, batches not split, native instruction
set; for the BatchNorm models, Keras's BatchNormalization in place of src/learning/layers.py's), so the
output shows what each buys. --full measures on all 45,000 prepared training images, one round
of 4 epochs, like the study's own epochs (about 35 min for all models).

Each run is a fresh process (so its peak memory and TensorFlow's kernel choice are its own),
and the variants of a model run in turn, `--rounds` times over, so that a slow spell of a
shared machine hits them alike. Images/s count training images over whole epochs (validation
included, as a user waits for it); reported: the median of all rounds' epochs after the
first (and their range: on a shared machine one slow epoch can take twice as long), the
median first epoch, peak resident memory, and the fraction of the machine's peak FLOP/s
reached. Ends with one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    choose_kernels,
    epoch_timer,
    fit_study_style,
    run_worker,
    study_style_model,
)


def forward_flops(model: Any) -> int:
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers."""
    flops = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, out_channels = layer.output.shape
            kh, kw = layer.kernel_size
            flops += 2 * height * width * kh * kw * layer.input.shape[-1] * out_channels
        elif kind == "Dense":
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)


def peak_flops() -> float:
    """2 FMA units x 8 float32 lanes x 2 FLOP per core and cycle (AVX2), at the nominal clock."""
    mhz = 2450.0
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    return (os.cpu_count() or 1) * mhz * 1e6 * 32


def _data(images: int) -> Any:
    import numpy as np

    from src.ground.data import load_split
    from src.ground.paths import split_path

    if split_path("train").exists():
        x, y = load_split("train")
        source = "prepared CIFAR-10"
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, images).astype(np.uint8)
        source = "synthetic"
    val = max(images // 5, 1)
    return x[:images], y[:images].astype("int32"), x[-val:], y[-val:].astype("int32"), source


# name -> settings changed from params.yaml's, each one lever away from the pipeline
# (`train` keys, or the model entry's `cpu_shards`)
LEVERS: dict[str, dict[str, object]] = {
    "without oneDNN": {"onednn": False},
    "plain Keras Adam": {"fused_optimizer": False},
    "steps_per_execution 1": {"steps_per_execution": 1},
    "with XLA": {"jit_compile": True},
    "batches not split": {"cpu_shards": 1},
    # faster on AVX-512 CPUs, but the bytes then depend on the CPU (train.cpu_isa)
    "native instruction set": {"cpu_isa": "native"},
    # Keras's own layer, whose float32 Rsqrt differs between CPU makers (src/learning/layers.py)
    "Keras BatchNormalization": {"keras_batch_norm": True},
}
BATCH_NORM_BUILDERS = ("mlp_bn", "vgg_style", "resnet_cifar")


def _changes(lever: dict[str, object], config: Any) -> bool:
    """Whether a lever switches something for this model (batches already unsplit stay so)."""
    if "keras_batch_norm" in lever:
        return config.builder in BATCH_NORM_BUILDERS
    return "cpu_shards" not in lever or lever["cpu_shards"] != config.cpu_shards


def _use_keras_batch_norm() -> None:
    """Build and train with keras.layers.BatchNormalization in place of src/learning/layers.py's."""
    import keras

    import src.learning.layers
    import src.learning.speed.shards

    # the builders' BatchNorm swapped for Keras's own, on purpose: what it costs is the measurement
    src.learning.layers.BatchNormalization = keras.layers.BatchNormalization  # type: ignore[misc]  # a class, reassigned on purpose
    src.learning.speed.shards.batch_normalization = keras.ops.batch_normalization  # the synchronised one


def chosen_levers(names: list[str] | None, config: Any) -> list[str]:
    """The levers to run for a model: none without --levers, all with a bare --levers, else those named."""
    if names is None:
        return []
    return [lever for lever in LEVERS if (not names or lever in names) and _changes(LEVERS[lever], config)]


def worker(model_id: str, variant: str, images: int, epochs: int) -> dict:
    """One measurement, in this fresh process."""
    from src.ground.params import load_params

    params = load_params(ROOT / "params.yaml")
    lever = LEVERS.get(variant, {})
    config = params.models[model_id].model_copy(update={k: v for k, v in lever.items() if k == "cpu_shards"})
    train_keys = {k: v for k, v in lever.items() if k not in ("cpu_shards", "keras_batch_norm")}
    train_cfg = params.train.model_copy(update=train_keys)
    choose_kernels("study" if variant == "baseline" else "pipeline", train_cfg)
    if lever.get("keras_batch_norm"):
        _use_keras_batch_norm()

    import keras

    from src.learning.run_record import peak_rss_mib
    from src.learning.training import fit, plain_model, prepare_model, seed_everything

    x, y, x_val, y_val, source = _data(images)
    timer = epoch_timer(keras)
    if variant == "baseline":
        seed_everything(params.seeds[0])
        model = study_style_model(config)
        fit_study_style(model, config, (x, y), (x_val, y_val), epochs, [timer])
    else:  # as the train stage does, thread pools first: before TensorFlow starts its runtime
        model = prepare_model(config, train_cfg, params.seeds[0], train_cfg.threads)
        fit(model, config, train_cfg, (x, y), (x_val, y_val), params.seeds[0], [timer], epochs=epochs)
        model = plain_model(model)
    return {
        "images": len(y),
        "epoch_seconds": timer.times,
        "peak_rss_mib": peak_rss_mib(),
        "train_flops_per_image": 3 * forward_flops(model),  # forward + backward ~ 3x forward
        "data": source,
    }


def _run(model_id: str, variant: str, images: int, epochs: int) -> dict:
    return run_worker(
        "speed", "--worker", model_id, variant, "--images", str(images), "--epochs", str(epochs)
    )


def _measure(model_id: str, variants: list[str], images: int, epochs: int, rounds: int) -> dict[str, dict]:
    """Run the variants in turn, `rounds` times over, so that a slow spell of the machine
    hits them alike; pool each variant's epochs after the first and take their median."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant in variants:
            runs[variant].append(_run(model_id, variant, images, epochs))
    results = {}
    for variant, done in runs.items():
        steady = [seconds for run in done for seconds in run["epoch_seconds"][1:]]
        results[variant] = {
            **done[0],
            "images_per_s": done[0]["images"] / statistics.median(steady),
            "steady_epoch_s": steady,
            "first_epoch_s": statistics.median(run["epoch_seconds"][0] for run in done),
            "peak_rss_mib": max(run["peak_rss_mib"] for run in done),
        }
    return results


def _epochs(result: dict) -> str:
    """First epoch, the range of the later ones (a slow spell shows as a wide range), peak memory."""
    steady = result["steady_epoch_s"]
    return (
        f"first epoch {result['first_epoch_s']:5.1f} s, then {min(steady):5.1f}-{max(steady):5.1f} s, "
        f"{result['peak_rss_mib']:5.0f} MiB"
    )


def _arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks speed", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model ids from params.yaml (default: all)")
    parser.add_argument("--images", type=int, default=6_000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is reported apart")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, taken in turn")
    parser.add_argument(
        "--levers",
        nargs="*",
        metavar="LEVER",
        help=f"also run the pipeline with each lever switched (all, or those named: {', '.join(LEVERS)})",
    )
    parser.add_argument("--full", action="store_true", help="all 45,000 images, 4 epochs, 1 round")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.full:
        args.images, args.epochs, args.rounds = 45_000, 4, 1
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is reported apart)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    unknown_levers = sorted(set(args.levers or []) - set(LEVERS))
    if unknown_levers:
        parser.error(f"unknown levers {unknown_levers}; choose from {list(LEVERS)}")
    return parser, args


def _model_line(
    model_id: str, measured: dict[str, Any], levers: list[str], peak: float, with_levers: bool
) -> dict[str, Any]:
    """Print one model's speeds and return them as one JSON line."""
    base, pipe = measured["baseline"], measured["pipeline"]
    ratio = pipe["images_per_s"] / base["images_per_s"]
    utilisation = pipe["images_per_s"] * pipe["train_flops_per_image"] / peak
    print(
        f"{model_id:15s} baseline {base['images_per_s']:7.0f} img/s ({_epochs(base)}) | "
        f"pipeline {pipe['images_per_s']:7.0f} img/s ({_epochs(pipe)}) | x{ratio:.2f}, "
        f"{utilisation:.1%} of peak FLOP/s [{pipe['data']} data]",
        flush=True,
    )
    line: dict[str, Any] = {
        "model": model_id,
        "baseline_images_per_s": round(base["images_per_s"], 1),
        "pipeline_images_per_s": round(pipe["images_per_s"], 1),
        "ratio": round(ratio, 2),
        "baseline_first_epoch_s": round(base["first_epoch_s"], 1),
        "pipeline_first_epoch_s": round(pipe["first_epoch_s"], 1),
        "baseline_peak_rss_mib": round(base["peak_rss_mib"]),
        "pipeline_peak_rss_mib": round(pipe["peak_rss_mib"]),
        "baseline_steady_epoch_s": [round(seconds, 1) for seconds in base["steady_epoch_s"]],
        "pipeline_steady_epoch_s": [round(seconds, 1) for seconds in pipe["steady_epoch_s"]],
        "peak_flops_fraction": round(utilisation, 4),
    }
    if with_levers:
        line["levers_images_per_s"] = {}
        for lever in levers:
            speed = measured[lever]["images_per_s"]
            line["levers_images_per_s"][lever] = round(speed, 1)
            gain = pipe["images_per_s"] / speed
            print(f"{'':15s} {lever:24s} {speed:7.0f} img/s (pipeline / this: x{gain:.2f})", flush=True)
    return line


def main(argv: list[str] | None = None) -> None:
    parser, args = _arguments(argv)
    if args.worker:
        model_id, variant = args.worker
        print(json.dumps(worker(model_id, variant, args.images, args.epochs)))
        return

    from src.ground.params import load_params

    params = load_params(ROOT / "params.yaml")
    model_ids = args.models or list(params.models)
    unknown = sorted(set(model_ids) - set(params.models))
    if unknown:
        parser.error(f"unknown model ids {unknown}; params.yaml has {sorted(params.models)}")
    peak = peak_flops()
    print(
        f"{os.cpu_count()} cores, peak {peak / 1e9:.0f} GFLOP/s; "
        f"{args.images:,} images, {args.epochs} epochs, {args.rounds} rounds"
    )
    print(f"pipeline train settings: {params.train.model_dump()}")
    print(f"cpu_shards: { {model_id: params.models[model_id].cpu_shards for model_id in model_ids} }")
    lines = []
    for model_id in model_ids:
        levers = chosen_levers(args.levers, params.models[model_id])
        measured = _measure(
            model_id, ["baseline", "pipeline", *levers], args.images, args.epochs, args.rounds
        )
        lines.append(_model_line(model_id, measured, levers, peak, args.levers is not None))
    for line in lines:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
