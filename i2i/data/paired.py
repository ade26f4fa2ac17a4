"""Paired image-to-image datasets (pix2pix): items ``{"A": input, "B": target}``.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017, appendix 6.2: training images are resized to 286×286, randomly cropped back to
256×256 ("random jitter") and mirrored; the same crop and flip go to both images of a
pair. Test images are used at 256×256 without jitter.

Three layouts (see ``datasets/pix2pix.md``):

* ``aligned``: ``root/<split>/*.jpg``, each file A and B side by side (``A|B``), the layout
  of the released facades, maps, edges2shoes, cityscapes... archives.
* ``paired_folders``: ``root/<split>/A/x.png`` and ``root/<split>/B/x.png`` matched by name.
* ``photo_sketch``: photos only; A is a sketch computed from the photo
  (:mod:`i2i.data.edges`), B the photo. ``root: null`` uses photos bundled with
  scikit-image (:data:`EMBEDDED_SPLITS`).

Items: ``A`` (C_A, H, W) and ``B`` (C_B, H, W) float32 in [-1, 1], H = W = ``crop_size``;
the recipe learns A -> B. ``direction: BtoA`` swaps the two. All randomness comes from
:func:`i2i.data.base.split_index`, so a sample is a pure function of ``(index, seed)``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .arrays import resize_bicubic, to_channels, to_tensor
from .base import split_index
from .edges import canny_sketch, xdog_sketch
from .io import list_images, read_image
from .transforms import paired_train, seeded

__all__ = ["AlignedDataset", "PairedFoldersDataset", "PhotoSketchDataset", "EMBEDDED_SPLITS", "to_tensor",
           "to_channels", "resize_bicubic"]

Direction = Literal["AtoB", "BtoA"]


# --- array helpers (to_tensor, to_channels, resize_bicubic) live in i2i.data.arrays, shared with the pipelines
def _short_side(h: int, w: int, size: int) -> tuple[int, int]:
    s = size / min(h, w)
    return max(size, round(h * s)), max(size, round(w * s))


class _PairedBase(Dataset):
    """Shared joint resize / random crop / flip; subclasses provide the raw pairs.

    Training (``split == "train"``): resize to ``load_size`` (the whole image to a
    ``load_size`` square, or its short side when ``preserve_aspect``), crop a random
    ``crop_size`` square and mirror with probability ½, identically for A and B
    (:func:`i2i.data.transforms.paired_train`, torchvision v2).
    Other splits: resize to ``crop_size`` (square, or short side + centre crop).
    """

    def __init__(self, split: str, load_size: int, crop_size: int, flip: bool, direction: str,
                 a_channels: int, b_channels: int, preserve_aspect: bool):
        if crop_size < 1:
            raise ConfigError(f"must be >= 1, got {crop_size}", "crop_size")
        if load_size < crop_size:
            raise ConfigError(f"must be >= crop_size ({crop_size}), got {load_size}", "load_size")
        if direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"expected AtoB or BtoA, got {direction!r}", "direction")
        for key, c in (("a_channels", a_channels), ("b_channels", b_channels)):
            if c not in (1, 3):
                raise ConfigError(f"expected 1 or 3, got {c}", key)
        self.split = split
        self.train = split == "train"
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.direction = direction
        self.a_channels, self.b_channels = a_channels, b_channels
        self.preserve_aspect = preserve_aspect
        self._jitter = paired_train(crop_size, flip)

    def _resize_stage(self, img: np.ndarray) -> np.ndarray:
        size = self.load_size if self.train else self.crop_size
        h, w = img.shape[:2]
        return resize_bicubic(img, *(_short_side(h, w, size) if self.preserve_aspect else (size, size)))

    def _crop_stage(self, images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """The same crop (random for training, central otherwise) and flip for every (H, W, C) image."""
        c = self.crop_size
        if self.train:  # torchvision v2, seeded from the item's rng (see i2i.data.transforms)
            # a copy: decoded and cached arrays may be read-only, which torch.from_numpy warns about
            out = seeded(self._jitter, rng, *(tv_tensors.Image(torch.from_numpy(im.copy()).permute(2, 0, 1)) for im in images))
            return [t.as_subclass(Tensor).permute(1, 2, 0).numpy() for t in out]
        # (h - c) // 2, as before: v2.CenterCrop rounds half to even, a 1-pixel shift of
        # some validation crops that would move the published evaluation figures
        h, w = images[0].shape[:2]
        top, left = (h - c) // 2, (w - c) // 2
        return [im[top:top + c, left:left + c] for im in images]

    def _item(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict[str, Tensor]:
        """Raw (A, B) as stored -> the training pair, after direction, channels and jitter."""
        if self.direction == "BtoA":
            a, b = b, a
        a, b = to_channels(a, self.a_channels), to_channels(b, self.b_channels)
        a, b = self._crop_stage([self._resize_stage(a), self._resize_stage(b)], rng)
        return {"A": to_tensor(a), "B": to_tensor(b)}


@DATASETS.register("aligned")
class AlignedDataset(_PairedBase):
    """``root/<split>/*.{jpg,png}``, each image the pair side by side: left half A, right half B.

    Args:
        root: dataset folder (required); images are read from ``root/<split>``.
        split: ``train`` gets random jitter; any other split is resized deterministically.
        direction: ``AtoB`` learns left -> right, ``BtoA`` right -> left.
        load_size, crop_size, flip: pix2pix jitter (286 -> random 256 crop, mirror).
        a_channels, b_channels: channels of the returned A and B (1 = gray).
    """

    def __init__(self, root: str | None, split: str = "train", direction: Direction = "AtoB",
                 load_size: int = 286, crop_size: int = 256, flip: bool = True,
                 a_channels: Literal[1, 3] = 3, b_channels: Literal[1, 3] = 3):
        super().__init__(split, load_size, crop_size, flip, direction, a_channels, b_channels, False)
        if root is None:
            raise ConfigError("the aligned layout needs a folder (root/<split>/*.jpg)", "root")
        self.files = list_images(Path(root) / split)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        path = self.files[i]
        ab = read_image(path, "RGB")
        h, w = ab.shape[:2]
        if w % 2:
            raise DataError(f"{path}: expected A and B side by side (even width), got {w}×{h}")
        return self._item(ab[:, : w // 2], ab[:, w // 2:], rng)


@DATASETS.register("paired_folders")
class PairedFoldersDataset(_PairedBase):
    """``root/<split>/<a_dir>/x.png`` paired with ``root/<split>/<b_dir>/x.png`` (same stem).

    Extensions may differ (``x.jpg`` with ``x.png``). A file without a partner is an error at
    construction; a pair of different sizes is an error when loaded. Both name the file.

    Args:
        root: dataset folder (required).
        split: sub-folder; ``train`` gets random jitter.
        a_dir, b_dir: names of the input and target sub-folders.
        direction, load_size, crop_size, flip, a_channels, b_channels: as in ``aligned``.
    """

    def __init__(self, root: str | None, split: str = "train", a_dir: str = "A", b_dir: str = "B",
                 direction: Direction = "AtoB", load_size: int = 286, crop_size: int = 256, flip: bool = True,
                 a_channels: Literal[1, 3] = 3, b_channels: Literal[1, 3] = 3):
        super().__init__(split, load_size, crop_size, flip, direction, a_channels, b_channels, False)
        if root is None:
            raise ConfigError("the paired_folders layout needs a folder (root/<split>/A, root/<split>/B)", "root")
        a_files, b_files = list_images(Path(root) / split / a_dir), list_images(Path(root) / split / b_dir)
        b_by_stem: dict[str, Path] = {}
        for p in b_files:
            if p.stem in b_by_stem:
                raise DataError(f"{p}: two files named {p.stem!r} (also {b_by_stem[p.stem].name}) in {p.parent}")
            b_by_stem[p.stem] = p
        a_stems = {p.stem for p in a_files}
        for p in a_files:
            if p.stem not in b_by_stem:
                raise DataError(f"{p}: no partner named {p.stem}.* in {Path(root) / split / b_dir}")
        for p in b_files:
            if p.stem not in a_stems:
                raise DataError(f"{p}: no partner named {p.stem}.* in {Path(root) / split / a_dir}")
        self.pairs = [(p, b_by_stem[p.stem]) for p in a_files]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        pa, pb = self.pairs[i]
        a, b = read_image(pa, "RGB"), read_image(pb, "RGB")
        if a.shape[:2] != b.shape[:2]:
            raise DataError(f"{pb}: size {b.shape[1]}×{b.shape[0]} does not match its partner {pa} "
                            f"({a.shape[1]}×{a.shape[0]})")
        return self._item(a, b, rng)


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle_left":
            return data.stereo_motorcycle()[0]
        return getattr(data, name)()

    return load


EMBEDDED_SPLITS: dict[str, tuple[str, ...]] = {
    # scikit-image's bundled colour photos (no download needed). Different scenes on
    # each side; chelsea and cat are the same picture, so only chelsea is used.
    "train": ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina"),
    "val": ("chelsea", "motorcycle_left"),
}
"""The embedded ``photo_sketch`` split; ``test`` is an alias of ``val``."""


@DATASETS.register("photo_sketch")
class PhotoSketchDataset(_PairedBase):
    """Sketch -> photo pairs made from photos alone: A = sketch of the photo, B = the photo.

    Photos are resized with their aspect ratio kept (short side = ``load_size`` for
    training, ``crop_size`` otherwise) and the sketch is computed at that resolution, so
    line width does not depend on the photo's original size; both are cached in memory
    (per DataLoader worker). Training then draws ``repeat`` random crops (+ flips) per
    photo per epoch; the other splits give one centre crop per photo.

    Args:
        root: ``root/<split>/`` holds the photos; ``null`` = the photos bundled with
            scikit-image, split as in :data:`EMBEDDED_SPLITS` (``train``; ``val``/``test``).
        split: ``train`` gets random crops and flips.
        sketch: ``xdog`` (thresholded XDoG) or ``canny`` (:mod:`i2i.data.edges`).
        sketch_params: keyword arguments of the sketch function (e.g. ``{sigma: 1.0}``).
        sketch_channels: channels of A (1 or 3); B is always RGB.
        repeat: training crops per photo per epoch (the embedded set has only 6 photos).
        direction: ``AtoB`` = sketch -> photo; ``BtoA`` = photo -> sketch.
        load_size, crop_size, flip: as in ``aligned`` (load_size is the short side here).
    """

    def __init__(self, root: str | None, split: str = "train", sketch: Literal["canny", "xdog"] = "xdog",
                 sketch_params: dict[str, float] | None = None, sketch_channels: Literal[1, 3] = 1,
                 repeat: int = 100, direction: Direction = "AtoB", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True):
        a_ch, b_ch = (sketch_channels, 3) if direction == "AtoB" else (3, sketch_channels)
        super().__init__(split, load_size, crop_size, flip, direction, a_ch, b_ch, True)
        if sketch not in ("canny", "xdog"):
            raise ConfigError(f"expected canny or xdog, got {sketch!r}", "sketch")
        if repeat < 1:
            raise ConfigError(f"must be >= 1, got {repeat}", "repeat")
        self.sketch_fn = canny_sketch if sketch == "canny" else xdog_sketch
        self.sketch_params = dict(sketch_params or {})
        self.sketch_channels = sketch_channels
        try:  # fail at construction, not in a worker, on a misspelt parameter
            self.sketch_fn(np.zeros((16, 16, 3), np.uint8), **self.sketch_params)
        except TypeError as e:
            raise ConfigError(f"not accepted by {self.sketch_fn.__name__}: {e}", "sketch_params") from None
        self.repeat = repeat if self.train else 1
        self.loaders: list[Callable[[], np.ndarray]]
        if root is None:
            key = "val" if split == "test" else split
            if key not in EMBEDDED_SPLITS:
                raise ConfigError(f"the embedded photos have splits train, val (test = val), got {split!r}", "split")
            self.names = list(EMBEDDED_SPLITS[key])
            self.loaders = [_skimage_photo(n) for n in self.names]
        else:
            files = list_images(Path(root) / split)
            self.names = [str(p) for p in files]
            self.loaders = [lambda p=p: read_image(p, "RGB") for p in files]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.loaders) * self.repeat

    def photo_and_sketch(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Photo ``k`` at working resolution (H, W, 3) and its sketch (H, W, sketch_channels), uint8."""
        if k not in self._cache:
            photo = self._resize_stage(to_channels(self.loaders[k](), 3))
            self._cache[k] = photo, self.sketch_fn(photo, channels=self.sketch_channels, **self.sketch_params)
        return self._cache[k]

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        photo, sketch = self.photo_and_sketch(i % len(self.loaders))
        sketch, photo = self._crop_stage([sketch, photo], rng)
        a, b = (sketch, photo) if self.direction == "AtoB" else (photo, sketch)
        return {"A": to_tensor(a), "B": to_tensor(b)}
