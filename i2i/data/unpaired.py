"""Unpaired image datasets (CycleGAN): items ``{"A": image of domain A, "B": image of domain B}``.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017. The two domains are two unrelated image collections; an
item pairs an A image with a B image drawn **independently** (the released code's
``unaligned`` dataset: ``index_B = random.randint(0, |B| - 1)`` during training), so no
correspondence is implied. Jitter as the released code's default ``resize_and_crop``: resize
to ``load_size`` (286), random ``crop_size`` (256) crop, mirror with probability ½ — drawn
separately for A and for B, since they are different pictures.

Two sources (see ``datasets/cyclegan.md``):

* ``unpaired_folders``: the released layout ``root/trainA``, ``root/trainB``, ``root/testA``,
  ``root/testB`` (horse2zebra, apple2orange, summer2winter_yosemite, monet2photo, maps...).
* ``unpaired_classes``: two classes of an MNIST-format IDX set as the two domains;
  ``root: null`` = Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``, no download at run time), sneaker ↔ ankle boot by
  default: the offline default of ``tasks/cyclegan_fashion.yaml``.

Items: ``A`` (C_A, H, W) and ``B`` (C_B, H, W) float32 in [-1, 1], H = W = ``crop_size``.
Length: max(|A|, |B|); item ``i`` holds A image ``i mod |A|``. Training draws B's index, the
crops and the flips from :func:`i2i.data.base.split_index`'s per-sample RNG, so an item is a
pure function of ``(index, seed)`` and a resumed run sees the same pairs. Other splits are
deterministic: B image ``i mod |B|``, resized to ``crop_size`` without crop or flip.

``paired_eval: true`` (folders only) is for the data sets whose test images do correspond
(maps, cityscapes, facades: the paper's §5.1 evaluations): ``testA/x`` is then paired with
``testB/x`` by file name and items carry ``"paired": 1``, so evaluation can also report
PSNR/SSIM against the true counterpart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .base import split_index
from .digits import load_idx_split
from .io import list_images, read_image
from .paired import to_tensor

__all__ = ["UnpairedFolders", "UnpairedClasses", "FASHION_MNIST_ROOT", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian/Ubuntu's ``dataset-fashion-mnist`` package installs the IDX files."""

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
"""Fashion-MNIST's label names (Xiao, Rasul & Vollgraf 2017, Table 1)."""


class _UnpairedBase(Dataset):
    """Independent A/B draws and per-image jitter; subclasses provide ``_image(domain, k)``.

    Args:
        split: ``train`` gets random B indices, crops and flips; other splits are deterministic.
        load_size, crop_size, flip: resize to ``load_size``², random ``crop_size``² crop, mirror.
        a_channels, b_channels: channels of the returned A and B (1 = gray, 3 = RGB).
    """

    def __init__(self, split: str, load_size: int, crop_size: int, flip: bool, a_channels: int, b_channels: int):
        if crop_size < 1:
            raise ConfigError(f"must be >= 1, got {crop_size}", "crop_size")
        if load_size < crop_size:
            raise ConfigError(f"must be >= crop_size ({crop_size}), got {load_size}", "load_size")
        for key, c in (("a_channels", a_channels), ("b_channels", b_channels)):
            if c not in (1, 3):
                raise ConfigError(f"expected 1 or 3, got {c}", key)
        self.split, self.train = split, split == "train"
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.channels = {"A": a_channels, "B": b_channels}
        self.sizes = {"A": 0, "B": 0}
        self.paired = False

    def _image(self, domain: str, k: int) -> np.ndarray:
        """Image ``k`` of ``domain`` ("A"/"B") as uint8 (H, W) or (H, W, C)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return max(self.sizes.values())

    def _jitter(self, img: np.ndarray, channels: int, rng: np.random.Generator) -> Tensor:
        """uint8 image -> (channels, crop, crop) float32 in [-1, 1], as described in the module docstring."""
        pil = Image.fromarray(img if img.ndim == 2 or img.shape[2] > 1 else img[..., 0])
        pil = pil.convert("L" if channels == 1 else "RGB")  # gray -> RGB repeats; RGB -> gray is BT.601 luma
        size = self.load_size if self.train else self.crop_size
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.BICUBIC)  # the released code's bicubic resize
        a = np.asarray(pil)
        a = a[..., None] if a.ndim == 2 else a
        if self.train:  # drawn from the item's rng directly; torchvision's RandomCrop (the paired
            # datasets') would draw other crops and change the published cyclegan_fashion figures
            c = self.crop_size
            top, left = int(rng.integers(0, size - c + 1)), int(rng.integers(0, size - c + 1))
            a = a[top:top + c, left:left + c]
            if self.flip and rng.random() < 0.5:
                a = a[:, ::-1]
        return to_tensor(a)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        n_a, n_b = self.sizes["A"], self.sizes["B"]
        # B is drawn first so that A's crop does not shift which B is chosen
        j = int(rng.integers(0, n_b)) if self.train else i % n_b
        item = {"A": self._jitter(self._image("A", i % n_a), self.channels["A"], rng),
                "B": self._jitter(self._image("B", j), self.channels["B"], rng)}
        if self.paired:
            item["paired"] = torch.tensor(1)
        return item


@DATASETS.register("unpaired_folders")
class UnpairedFolders(_UnpairedBase):
    """The released CycleGAN layout: ``root/<split>A/*`` and ``root/<split>B/*``.

    Args:
        root: the data set folder (required), e.g. ``horse2zebra`` holding ``trainA``,
            ``trainB``, ``testA``, ``testB``.
        split: ``train`` or ``test`` (the released archives have no validation split; ``val``
            reads ``valA``/``valB`` if you made them).
        load_size, crop_size, flip: 286 -> random 256 crop + mirror (the released defaults).
        a_channels, b_channels: channels of A and B (1 = gray, 3 = RGB).
        paired_eval: pair ``<split>A/x`` with ``<split>B/x`` by file stem on non-train splits
            (data sets with corresponding test images, e.g. maps); a file without a partner is
            an error naming it.
    """

    def __init__(self, root: str | None, split: str = "train", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, a_channels: Literal[1, 3] = 3, b_channels: Literal[1, 3] = 3,
                 paired_eval: bool = False):
        super().__init__(split, load_size, crop_size, flip, a_channels, b_channels)
        if root is None:
            raise ConfigError("the unpaired_folders layout needs a folder holding trainA, trainB, testA, testB", "root")
        self.root = Path(root)
        missing = [f"{split}{d}" for d in "AB" if not (self.root / f"{split}{d}").is_dir()]
        if missing:
            have = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
            raise DataError(f"{self.root}: no {' or '.join(missing)} folder (expected {split}A and {split}B side by side, "
                            f"the released CycleGAN layout; found: {', '.join(have) or 'nothing'})")
        self.files = {d: list_images(self.root / f"{split}{d}") for d in "AB"}
        if paired_eval and not self.train:
            by_stem = {p.stem: p for p in self.files["B"]}
            a_stems = {p.stem for p in self.files["A"]}
            for p in self.files["A"]:
                if p.stem not in by_stem:
                    raise DataError(f"{p}: paired_eval needs a partner named {p.stem}.* in {self.root / f'{split}B'}")
            for p in self.files["B"]:
                if p.stem not in a_stems:
                    raise DataError(f"{p}: paired_eval needs a partner named {p.stem}.* in {self.root / f'{split}A'}")
            self.files["B"] = [by_stem[p.stem] for p in self.files["A"]]  # item i: A_i with its own B_i
            self.paired = True
        self.sizes = {d: len(f) for d, f in self.files.items()}

    def _image(self, domain: str, k: int) -> np.ndarray:
        return read_image(self.files[domain][k], "L" if self.channels[domain] == 1 else "RGB")


@DATASETS.register("unpaired_classes")
class UnpairedClasses(_UnpairedBase):
    """Two classes of an MNIST-format IDX set as domains A and B (28×28 gray, upsampled).

    Args:
        root: folder of IDX files (``train-images-idx3-ubyte[.gz]`` ...; see :mod:`i2i.data.digits`);
            ``null`` = Fashion-MNIST at :data:`FASHION_MNIST_ROOT` (``apt-get install dataset-fashion-mnist``).
        split: ``train`` or ``test`` (``val`` = ``test``).
        classes: the labels of A and B; Fashion-MNIST's 7 = sneaker, 9 = ankle boot
            (:data:`FASHION_MNIST_CLASSES`).
        load_size, crop_size, flip: 28×28 is resized to ``load_size`` then cropped to
            ``crop_size`` for training (36 -> 32: the paper's 286/256 ratio), resized to
            ``crop_size`` otherwise. A multiple of 4 suits the ResNet generators.
        channels: channels of A and B (1 = gray; 3 repeats it).
        limit: keep the first ``limit`` images of each class (quick experiments, tests).
    """

    def __init__(self, root: str | None, split: str = "train", classes: tuple[int, int] | list[int] = (7, 9),
                 load_size: int = 36, crop_size: int = 32, flip: bool = True, channels: Literal[1, 3] = 1,
                 limit: int | None = None):
        super().__init__(split, load_size, crop_size, flip, channels, channels)
        if split not in ("train", "test", "val"):
            raise ConfigError(f"expected train, test or val, got {split!r}", "split")
        classes = list(classes)
        if len(classes) != 2 or len(set(classes)) != 2:
            raise ConfigError(f"expected two different labels [A, B], got {classes}", "classes")
        if limit is not None and limit < 1:
            raise ConfigError(f"must be >= 1, got {limit}", "limit")
        if root is None:
            if not FASHION_MNIST_ROOT.is_dir():
                raise DataError(f"{FASHION_MNIST_ROOT}: not found; root: null reads Fashion-MNIST from there "
                                f"(apt-get install dataset-fashion-mnist), or set data.root to an MNIST-format IDX folder")
            root = str(FASHION_MNIST_ROOT)
        self.root = root
        images, labels = load_idx_split(root, split)
        self.classes = classes
        self.images: dict[str, np.ndarray] = {}
        for d, label in zip("AB", classes):
            keep = images[labels == label][:limit]
            if len(keep) == 0:
                found = ", ".join(str(v) for v in np.unique(labels))
                raise DataError(f"{root}: no {split} image has label {label} (labels present: {found})")
            self.images[d] = np.array(keep, copy=True)  # (n, 28, 28) uint8
        self.sizes = {d: len(v) for d, v in self.images.items()}

    def _image(self, domain: str, k: int) -> np.ndarray:
        return self.images[domain][k]
