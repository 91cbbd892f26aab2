"""Tiny CIFAR-10 tarballs in the exact layout of the official `cifar-10-binary.tar.gz`.

Members `cifar-10-batches-bin/data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin` and
`batches.meta.txt`; 3,073-byte records (a label byte, then 1,024 red, 1,024 green and
1,024 blue bytes, row-major). Images carry a class-dependent pattern plus noise, so a
model can learn something from a few hundred of them.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ROOT = "cifar-10-batches-bin"
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (N×32×32×3 uint8) with balanced labels and a learnable class signal."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    images = rng.integers(0, 96, size=(n, 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        channel, band = label % 3, label // 3  # a bright band whose position and colour encode the class
        images[i, band * 8 : band * 8 + 8, :, channel] += 150
    return images, labels.astype(np.uint8)


def encode_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records in the official binary layout."""
    planar = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return np.concatenate([labels[:, None], planar], axis=1).astype(np.uint8).tobytes()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    info.mtime = 1246000000
    tar.addfile(info, io.BytesIO(payload))


def write_tarball(
    path: Path,
    images_per_batch: int = 50,
    seed: int = 0,
    *,
    members: dict[str, bytes | None] | None = None,
    extra: list[tarfile.TarInfo] | None = None,
    classes: list[str] = CLASSES,
) -> Path:
    """Write a tiny tarball; `members` replaces (bytes) or drops (None) batch members by file name."""
    members = members or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, f"{ROOT}/batches.meta.txt", ("\n".join(classes) + "\n\n").encode())
        for index, batch in enumerate(BATCHES):
            name = f"{batch}.bin"
            if name in members:
                content = members[name]
                if content is not None:
                    _add(tar, f"{ROOT}/{name}", content)
                continue
            _add(tar, f"{ROOT}/{name}", encode_batch(*make_images(images_per_batch, seed + index)))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
