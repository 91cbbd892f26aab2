"""Stage `prepare`: the tarball's records (read without extracting) as uint8 arrays, a seeded,
stratified validation split, and data/prepared/{train,val,test}.npz with reports/data.json.
Details: docs/internals.md#prepare.
"""

from __future__ import annotations

import logging
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from src.ground.cli import run_stage
from src.ground.data import CLASSES, PREPARED_DIR, DataError
from src.ground.files import atomic_write, write_json
from src.ground.paths import DATA_FACTS, RAW_TARBALL, split_path

log = logging.getLogger(__name__)

TARBALL = RAW_TARBALL
STATS_FILE = DATA_FACTS
ROOT = "cifar-10-batches-bin"
TRAIN_MEMBERS = [f"{ROOT}/data_batch_{i}.bin" for i in range(1, 6)]
TEST_MEMBER = f"{ROOT}/test_batch.bin"
META_MEMBER = f"{ROOT}/batches.meta.txt"
RECORD_BYTES = 1 + 32 * 32 * 3  # one label byte, then 1,024 red, green and blue bytes


def _read_members(path: Path, names: list[str]) -> dict[str, bytes]:
    """Read the named members in one pass over the gzip stream (no seeking back, no extraction)."""
    wanted, payloads = set(names), {}
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            if member.name not in wanted:
                continue  # anything else (including names like ../x) is skipped, never written
            if not member.isreg():
                raise DataError(
                    f"{path}: member {member.name} is not a regular file (links and devices are refused)"
                )
            handle = tar.extractfile(member)
            assert handle is not None  # a regular member always has a file object
            payloads[member.name] = handle.read()
    for name in names:
        if name not in payloads:
            raise DataError(
                f"{path}: member {name} is missing; is this the *binary* version of CIFAR-10 "
                "(cifar-10-binary.tar.gz)?"
            )
    return payloads


def decode_batch(payload: bytes, name: str, expected_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn one binary batch into (images uint8 N×32×32×3, labels uint8 N), checking it."""
    if len(payload) % RECORD_BYTES:
        raise DataError(
            f"member {name} has {len(payload):,} bytes, not a multiple of the {RECORD_BYTES:,}-byte record"
        )
    records = np.frombuffer(payload, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    if len(records) != expected_images:
        raise DataError(
            f"member {name} holds {len(records):,} images, expected {expected_images:,} "
            "(data.images_per_batch)"
        )
    labels = records[:, 0].copy()
    if labels.max(initial=0) >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataError(f"member {name}: record {bad} has label {labels[bad]}, outside 0-{len(CLASSES) - 1}")
    # planar RGB (3 × 1,024, row-major) -> height × width × channel
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_tarball(path: Path, images_per_batch: int = 10000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the official train and test batches from the tarball, checked, without extracting."""
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro download` first")
    try:
        payloads = _read_members(path, [META_MEMBER, *TRAIN_MEMBERS, TEST_MEMBER])
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path} is not a readable .tar.gz ({err}); delete it and download again") from None
    classes = payloads.pop(META_MEMBER).decode("ascii", "replace").split()
    if tuple(classes) != CLASSES:
        raise DataError(f"{path}: {META_MEMBER} lists classes {classes}, expected {list(CLASSES)}")
    train = [decode_batch(payloads.pop(m), m, images_per_batch) for m in TRAIN_MEMBERS]
    test = decode_batch(payloads.pop(TEST_MEMBER), TEST_MEMBER, images_per_batch)
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": test,
    }


def _stratified_cap(
    x: np.ndarray, y: np.ndarray, cap: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if cap is None or cap >= len(y):
        return x, y
    x_kept, _, y_kept, _ = train_test_split(x, y, train_size=cap, stratify=y, random_state=seed)
    return x_kept, y_kept


def split(
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    val_size: int,
    seed: int,
    max_images_per_split: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split train into train and a stratified validation set; optionally cap every split."""
    x, y = data["train"]
    if val_size >= len(y):
        raise DataError(f"prepare.val_size={val_size} must be smaller than the {len(y):,} training images")
    if val_size < len(CLASSES):
        raise DataError(f"prepare.val_size={val_size} must be at least {len(CLASSES)} (one image per class)")
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=val_size, stratify=y, random_state=seed)
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": data["test"]}
    return {name: _stratified_cap(*xy, max_images_per_split, seed) for name, xy in splits.items()}


def save_splits(splits: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path) -> None:
    """Write each split as `<out_dir>/<split>.npz` (arrays x and y), atomically."""
    for name, (x, y) in splits.items():

        def write(tmp: Path, x: np.ndarray = x, y: np.ndarray = y) -> None:
            np.savez(tmp, x=x, y=y)

        atomic_write(split_path(name, out_dir), write)


def data_stats(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, object]:
    """Dataset facts for reports/data.json (git-tracked, not a metric): images per split and
    class, pixel mean and std per channel."""
    stats: dict[str, object] = {}
    for name, (x, y) in splits.items():
        counts = np.bincount(y, minlength=len(CLASSES))
        means, stds = [], []
        for channel in range(3):  # from a 256-bin histogram: exact, and no float copy of the images
            histogram = np.bincount(x[..., channel].ravel(), minlength=256).astype(np.float64)
            values = np.arange(256) / 255.0
            mean = histogram @ values / histogram.sum()
            means.append(round(float(mean), 6))
            stds.append(round(float(np.sqrt(histogram @ (values - mean) ** 2 / histogram.sum())), 6))
        stats[name] = {
            "images": len(y),
            "per_class": {cls: int(n) for cls, n in zip(CLASSES, counts, strict=True)},
            "pixel_mean_rgb": means,
            "pixel_std_rgb": stds,
        }
    return stats


def main() -> None:
    from src.ground.params import load_params

    params = load_params()
    started = time.monotonic()
    data = read_tarball(TARBALL, params.data.images_per_batch)
    splits = split(data, params.prepare.val_size, params.seed, params.prepare.max_images_per_split)
    save_splits(splits, PREPARED_DIR)
    write_json(STATS_FILE, data_stats(splits))
    sizes = ", ".join(f"{name} {len(y):,}" for name, (_, y) in splits.items())
    log.info("prepared %s in %.1f s -> %s", sizes, time.monotonic() - started, PREPARED_DIR)


if __name__ == "__main__":
    run_stage(main)
