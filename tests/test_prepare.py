"""The prepare stage: reading, checking and splitting the binary batches."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from src.ground import fake_cifar
from src.ground.data import CLASSES, DataError, load_split
from src.stages.prepare import data_stats, decode_batch, read_tarball, save_splits, split
from tests.conftest import IMAGES_PER_BATCH


def test_decode_batch_maps_planar_rgb_to_height_width_channel() -> None:
    images, labels = fake_cifar.make_images(4, seed=1)
    images[2, 5, 7] = (11, 22, 33)
    decoded, decoded_labels = decode_batch(fake_cifar.encode_batch(images, labels), "b", 4)
    np.testing.assert_array_equal(decoded, images)
    np.testing.assert_array_equal(decoded_labels, labels)
    assert tuple(decoded[2, 5, 7]) == (11, 22, 33)
    # the record layout itself: label, then 1,024 reds (row-major), greens, blues
    record = fake_cifar.encode_batch(images, labels)[2 * 3073 : 3 * 3073]
    offset = 1 + 5 * 32 + 7
    assert (record[0], record[offset], record[offset + 1024], record[offset + 2048]) == (
        labels[2],
        11,
        22,
        33,
    )


def test_read_tarball_reads_all_batches(tiny_tarball: Path) -> None:
    data = read_tarball(tiny_tarball, IMAGES_PER_BATCH)
    x_train, y_train = data["train"]
    x_test, _y_test = data["test"]
    assert x_train.shape == (5 * IMAGES_PER_BATCH, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (IMAGES_PER_BATCH, 32, 32, 3)
    expected, _ = fake_cifar.make_images(IMAGES_PER_BATCH, seed=0)
    np.testing.assert_array_equal(x_train[:IMAGES_PER_BATCH], expected)
    assert set(np.unique(y_train)) == set(range(10))


def _bad_tarball(tmp_path: Path, **kwargs) -> Path:
    return fake_cifar.write_tarball(tmp_path / "bad.tar.gz", IMAGES_PER_BATCH, **kwargs)


def test_missing_member_is_named(tmp_path: Path) -> None:
    path = _bad_tarball(tmp_path, members={"data_batch_3.bin": None})
    with pytest.raises(DataError, match=r"member cifar-10-batches-bin/data_batch_3.bin is missing"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    path = _bad_tarball(tmp_path, members={"test_batch.bin": None}, extra=[link])
    with pytest.raises(DataError, match=r"test_batch.bin is not a regular file"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_path_traversal_member_is_never_written(tmp_path: Path) -> None:
    evil = tarfile.TarInfo("../../evil.txt")
    evil.size = 4
    path = _bad_tarball(tmp_path, extra=[evil])
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    data = read_tarball(path, IMAGES_PER_BATCH)  # only the expected members are read
    assert len(data["train"][1]) == 5 * IMAGES_PER_BATCH
    assert not list(tmp_path.rglob("evil.txt"))


def test_truncated_batch_is_refused(tmp_path: Path) -> None:
    images, labels = fake_cifar.make_images(IMAGES_PER_BATCH, seed=2)
    payload = fake_cifar.encode_batch(images, labels)[:-100]
    path = _bad_tarball(tmp_path, members={"data_batch_2.bin": payload})
    with pytest.raises(DataError, match=r"data_batch_2.bin has 184,280 bytes, not a multiple of the 3,073"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_wrong_record_count_is_refused(tmp_path: Path) -> None:
    images, labels = fake_cifar.make_images(IMAGES_PER_BATCH - 1, seed=2)
    path = _bad_tarball(tmp_path, members={"test_batch.bin": fake_cifar.encode_batch(images, labels)})
    with pytest.raises(DataError, match=r"test_batch.bin holds 59 images, expected 60"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_label_out_of_range_is_refused(tmp_path: Path) -> None:
    images, labels = fake_cifar.make_images(IMAGES_PER_BATCH, seed=2)
    labels[7] = 10
    path = _bad_tarball(tmp_path, members={"data_batch_1.bin": fake_cifar.encode_batch(images, labels)})
    with pytest.raises(DataError, match=r"data_batch_1.bin: record 7 has label 10, outside 0-9"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_wrong_class_list_is_refused(tmp_path: Path) -> None:
    path = _bad_tarball(tmp_path, classes=[*fake_cifar.CLASSES[:-1], "lorry"])
    with pytest.raises(DataError, match=r"lists classes .*'lorry'"):
        read_tarball(path, IMAGES_PER_BATCH)


def test_corrupt_gzip_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"not a readable \.tar\.gz"):
        read_tarball(broken, IMAGES_PER_BATCH)
    with pytest.raises(DataError, match="run `dvc repro download` first"):
        read_tarball(tmp_path / "absent.tar.gz", IMAGES_PER_BATCH)


def test_split_is_stratified_seeded_and_disjoint(tiny_tarball: Path) -> None:
    data = read_tarball(tiny_tarball, IMAGES_PER_BATCH)
    splits = split(data, val_size=50, seed=42)
    assert [len(splits[name][1]) for name in ("train", "val", "test")] == [250, 50, 60]
    assert np.bincount(splits["val"][1], minlength=10).tolist() == [5] * 10
    again = split(data, val_size=50, seed=42)
    np.testing.assert_array_equal(splits["val"][0], again["val"][0])
    other = split(data, val_size=50, seed=7)
    assert not np.array_equal(splits["val"][0], other["val"][0])
    train_rows = {row.tobytes() for row in splits["train"][0]}
    assert not any(row.tobytes() in train_rows for row in splits["val"][0])


def test_cap_per_split_is_stratified(tiny_tarball: Path) -> None:
    splits = split(read_tarball(tiny_tarball, IMAGES_PER_BATCH), val_size=50, seed=0, max_images_per_split=40)
    assert [len(splits[name][1]) for name in ("train", "val", "test")] == [40, 40, 40]
    assert np.bincount(splits["train"][1], minlength=10).tolist() == [4] * 10


def test_bad_validation_size(tiny_tarball: Path) -> None:
    data = read_tarball(tiny_tarball, IMAGES_PER_BATCH)
    with pytest.raises(DataError, match=r"prepare\.val_size=300 must be smaller than the 300"):
        split(data, val_size=300, seed=0)
    with pytest.raises(DataError, match="at least 10"):
        split(data, val_size=5, seed=0)


def test_saved_splits_round_trip_without_temporary_files(tmp_path: Path, tiny_tarball: Path) -> None:
    splits = split(read_tarball(tiny_tarball, IMAGES_PER_BATCH), val_size=50, seed=0)
    save_splits(splits, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.npz", "train.npz", "val.npz"]
    x, y = load_split("val", tmp_path)
    np.testing.assert_array_equal(x, splits["val"][0])
    np.testing.assert_array_equal(y, splits["val"][1])


def test_load_split_missing_or_foreign(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train.npz not found: run `dvc repro prepare` first"):
        load_split("train", tmp_path)
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 28, 28), np.float32), y=np.zeros(2))
    with pytest.raises(DataError, match="does not hold uint8"):
        load_split("train", tmp_path)


def test_data_stats_counts_and_pixel_moments() -> None:
    x = np.zeros((4, 32, 32, 3), np.uint8)
    x[:2, ..., 0] = 255  # red: half the pixels 1.0, half 0.0 -> mean 0.5, std 0.5
    stats = data_stats({"train": (x, np.array([0, 0, 1, 9], np.uint8))})
    assert stats["train"]["images"] == 4
    assert stats["train"]["per_class"]["airplane"] == 2 and stats["train"]["per_class"]["truck"] == 1
    assert stats["train"]["pixel_mean_rgb"] == [0.5, 0.0, 0.0]
    assert stats["train"]["pixel_std_rgb"] == [0.5, 0.0, 0.0]
    assert list(stats["train"]["per_class"]) == list(CLASSES)
