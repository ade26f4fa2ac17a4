"""MNIST-format digit data: IDX files (MNIST, Fashion-MNIST, KMNIST) or the embedded digits.

* ``root`` = a folder holding ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` and
  ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``; the
  ``train-images.idx3-ubyte`` spelling is accepted too). Format: LeCun et al., "The MNIST
  database" — big-endian header, magic 0x00000803 (images: count, rows, cols) or
  0x00000801 (labels: count), then uint8 payload.
* ``root = None`` = the embedded default that always works offline: scikit-learn's bundled
  UCI handwritten digits (1,797 real 8×8 digits, values 0..16). Each is upscaled to 20×20
  (bilinear, antialiased) and centred in a 28×28 frame — the way MNIST itself normalises
  digits into a 20×20 box inside 28×28 — so every network sees the same geometry.
  Split: a fixed permutation (seed 0), first 1,437 = ``train``, last 360 = ``test``.

Items: ``{"image": (1, 28, 28) float in [-1, 1], "label": int64 scalar}``.
``split``: ``train`` or ``test`` (``val`` is an alias of ``test``: MNIST has no separate one).
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from ..registry import DATASETS
from .base import split_index

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_PREFIX = {"train": "train", "test": "t10k", "val": "t10k"}


def _find(root: Path, stem: str) -> Path:
    kind, tail = stem.rsplit("-", 1)  # "train-images", "idx3-ubyte"
    for name in (stem, f"{kind}.{tail}"):
        for ext in ("", ".gz"):
            p = root / f"{name}{ext}"
            if p.is_file():
                return p
    raise DataError(f"{root}: no {stem}[.gz] (expected MNIST-format IDX files: train-images-idx3-ubyte.gz, "
                    f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a uint8 array; wrong magic or short payload -> DataError."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (images) "
                        f"or 0x{LABELS_MAGIC:08x} (labels)")
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    n = int(np.prod(shape))
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size < n:
        raise DataError(f"{path}: truncated payload: header says {shape} = {n} bytes, file has {payload.size}")
    return payload[:n].reshape(shape)


def load_idx_split(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    prefix = _PREFIX[split]
    img_path = _find(root, f"{prefix}-images-idx3-ubyte")
    lbl_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected a 3-D image array (count, rows, cols), got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{lbl_path}: {len(labels)} labels for {len(images)} images in {img_path.name}")
    return images, labels.astype(np.int64)


def load_embedded_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits as 28×28 uint8, MNIST-style framing (see module docstring)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    x = torch.nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False, antialias=True)
    x = torch.nn.functional.pad(x, (4, 4, 4, 4))
    images = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(images))
    n_train = 1437
    idx = perm[:n_train] if split == "train" else perm[n_train:]
    return images[idx], labels[idx]


@DATASETS.register("mnist")
class MNISTDigits(Dataset):
    """MNIST-format digits at 28×28 (see module docstring).

    Args:
        root: folder of IDX files, or None for the embedded scikit-learn digits.
        split: ``train``, ``test`` or ``val`` (= ``test``).
        limit: keep only the first ``limit`` images (quick experiments, tests).
    """

    num_classes = 10

    def __init__(self, root: str | None, split: str = "train", limit: int | None = None):
        if split not in _PREFIX:
            raise DataError(f"unknown split {split!r}; expected train, test or val")
        images, labels = load_embedded_digits(split) if root is None else load_idx_split(root, split)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.root, self.split = root, split
        self.images = torch.from_numpy(np.array(images, copy=True))  # (N, 28, 28) uint8
        self.labels = torch.from_numpy(np.array(labels, copy=True))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i, _ = split_index(index)
        x = self.images[i].float().div(127.5).sub(1.0)[None]
        return {"image": x, "label": self.labels[i]}

    def fingerprint(self) -> str:
        """A content hash (for caching the evaluation classifier per data set)."""
        import hashlib

        h = hashlib.sha1(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()[:16]
