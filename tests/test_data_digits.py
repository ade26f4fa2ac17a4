"""MNIST-format IDX reading, the embedded digits, and bad-file errors."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data.digits import MNISTDigits, read_idx
from i2i.errors import DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, gz: bool = False, magic: int | None = None) -> None:
    ndim = array.ndim
    if magic is None:
        magic = 0x0800 | ndim
    header = struct.pack(">I", magic) + struct.pack(f">{ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:  # closed: Python 3.12's GzipFile buffers until close
        f.write(data)


def make_idx_root(root: Path, n: int = 12, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", imgs, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
    return imgs, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    imgs, labels = make_idx_root(tmp_path, gz=gz)
    ds = MNISTDigits(str(tmp_path), "train")
    assert len(ds) == 12
    item = ds[3]
    assert item["image"].shape == (1, 28, 28)
    expected = torch.from_numpy(imgs[3]).float() / 127.5 - 1
    assert torch.allclose(item["image"][0], expected)
    assert item["label"].item() == labels[3]
    assert len(MNISTDigits(str(tmp_path), "val")) == 12


def test_embedded_digits_split_and_framing() -> None:
    tr, te = MNISTDigits(None, "train"), MNISTDigits(None, "test")
    assert (len(tr), len(te)) == (1437, 360)
    x = tr[0]["image"]
    assert x.shape == (1, 28, 28) and x.min() >= -1 and x.max() <= 1
    # MNIST-style framing: the 4-pixel border is empty background (-1)
    assert torch.all(tr.images[:, :4] == 0) and torch.all(tr.images[:, -4:] == 0)
    assert set(tr.labels.tolist()) == set(range(10))
    # the split is fixed and disjoint
    a = {bytes(i.numpy()) for i in tr.images}
    b = {bytes(i.numpy()) for i in te.images}
    assert len(a & b) <= 2  # the UCI set itself has a few exact duplicates


def test_wrong_magic_truncated_and_missing(tmp_path: Path) -> None:
    make_idx_root(tmp_path, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    write_idx(bad, np.zeros((2, 28, 28), np.uint8), magic=0x1234)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: wrong magic number 0x00001234, expected 0x00000803"):
        MNISTDigits(str(tmp_path), "train")
    data = struct.pack(">IIII", 0x803, 5, 28, 28) + bytes(100)
    bad.write_bytes(data)
    with pytest.raises(DataError, match="truncated payload"):
        read_idx(bad)
    bad.unlink()
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        MNISTDigits(str(tmp_path), "train")
    with pytest.raises(DataError, match="does not exist"):
        MNISTDigits(str(tmp_path / "nope"), "train")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_files() -> None:
    ds = MNISTDigits(str(FASHION), "test")
    assert len(ds) == 10_000
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
