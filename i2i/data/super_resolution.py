"""Super-resolution datasets: HR images, LR made on the fly by MATLAB bicubic (or given).

Items (``__getitem__``) are ``{"lr": (3, h, w) float32 in [0, 1], "hr": (3, h·s, w·s)
float32 in [0, 1], "index": int64 scalar}`` with ``s`` = ``scale``; ``dataset.names[index]``
is the image's name. Training items are random HR patches; validation items are whole
images (cropped to a multiple of ``scale``) or a centre crop, so they differ in size:
evaluate with batch size 1 unless ``val_patch_size`` is set.

``sr_folder`` (bicubic degradation, the SRResNet/SRGAN protocol of Ledig et al. 2017,
§3.2: "LR images by downsampling HR images using bicubic kernel with downsampling factor
r = 4"): the LR image is ``i2i.data.resize.imresize(HR, 1/s)`` (MATLAB-compatible),
clamped to [0, 1] and, by default, rounded to 8 bits, because benchmark LR images are
stored as 8-bit PNGs and a model trained on unquantised LR would see a different input
distribution at test time.

``sr_paired``: LR images supplied on disk (e.g. DIV2K's ``X4`` folders or another
degradation), matched to HR by file name.

Embedded default (``sr_folder`` with ``root: null``): scikit-image's bundled photos,
always available offline. Gray ones are repeated to three channels. Fixed split:

* train (10): astronaut, rocket, immunohistochemistry, hubble_deep_field,
  motorcycle_left, motorcycle_right (a stereo pair: both in train so no view of the
  scene leaks into val), retina, camera, grass, gravel
* val (4): chelsea, coffee, coins, brick

Sampling: every random choice (crop position, flips, transpose) comes from the per-sample
RNG of :func:`i2i.data.base.split_index`, so a sample is a function of (index, seed) only.
HR crop positions are multiples of ``scale`` so that the HR patch and its LR image stay on
the same pixel grid as the whole-image LR would be.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .base import split_index
from .io import DEFAULT_MAX_PIXELS, image_size, list_images, read_image
from .resize import imresize

log = logging.getLogger(__name__)

EMBEDDED_TRAIN: tuple[str, ...] = ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
                                   "motorcycle_left", "motorcycle_right", "retina", "camera", "grass", "gravel")
EMBEDDED_VAL: tuple[str, ...] = ("chelsea", "coffee", "coins", "brick")
_SPLITS = ("train", "val")


def _embedded_loader(name: str) -> Callable[[], np.ndarray]:
    from skimage import data

    if name == "motorcycle_left":
        return lambda: data.stereo_motorcycle()[0]
    if name == "motorcycle_right":
        return lambda: data.stereo_motorcycle()[1]
    return getattr(data, name)


def load_embedded(split: str) -> tuple[list[str], list[np.ndarray]]:
    """The embedded split as (names, uint8 (H, W, 3) arrays)."""
    names = EMBEDDED_TRAIN if split == "train" else EMBEDDED_VAL
    images = []
    for n in names:
        a = np.asarray(_embedded_loader(n)())
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(a[..., :3], dtype=np.uint8))
    return list(names), images


def _to_tensor(a: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    # astype copies, so cached (read-only) arrays are never shared with the tensor
    return torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def _augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random element of the dihedral group D4 (flips + transpose) on each (H, W, C)."""
    hflip, vflip, transpose = (bool(b) for b in rng.integers(0, 2, size=3))
    out = []
    for a in arrays:
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        if transpose:  # with the flips, covers all 90° rotations
            a = a.transpose(1, 0, 2)
        out.append(a)
    return out


def make_lr(hr: Tensor, scale: int, quantize: bool = True) -> Tensor:
    """MATLAB-bicubic LR of an HR tensor (..., H, W) in [0, 1], clamped (and 8-bit rounded)."""
    lr = imresize(hr, scale=1.0 / scale).clamp_(0.0, 1.0)
    return lr.mul_(255.0).round_().div_(255.0) if quantize else lr


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}", "split")


class _ImageStore:
    """Images by position: decoded once into memory, or read from disk each time."""

    def __init__(self, names: list[str], paths: list[Path] | None, arrays: list[np.ndarray] | None,
                 max_pixels: int | None):
        self.names, self.paths, self.arrays, self.max_pixels = names, paths, arrays, max_pixels
        self.sizes: list[tuple[int, int]] = [a.shape[:2] for a in arrays] if arrays is not None else []

    def __len__(self) -> int:
        return len(self.names)

    def get(self, i: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[i]
        assert self.paths is not None
        return read_image(self.paths[i], "RGB", max_pixels=self.max_pixels)


def _scan(paths: list[Path], cache: str, on_error: str, max_pixels: int | None,
          accept: Callable[[Path, int, int], str | None]) -> _ImageStore:
    """Validate every file once; keep the good ones (decoded if ``cache == "memory"``).

    ``accept(path, h, w)`` returns None or the reason the image cannot be used.
    """
    names, kept, arrays, sizes = [], [], [], []
    for p in paths:
        try:
            if cache == "memory":
                a = read_image(p, "RGB", max_pixels=max_pixels)
                h, w = a.shape[:2]
            else:
                h, w = image_size(p, max_pixels)
            reason = accept(p, h, w)
            if reason is not None:
                raise DataError(f"{p}: {reason}")
        except DataError as e:
            if on_error == "raise":
                raise
            log.warning("skipping %s", e)
            continue
        names.append(p.stem)
        kept.append(p)
        sizes.append((h, w))
        if cache == "memory":
            arrays.append(a)
    store = _ImageStore(names, kept, arrays if cache == "memory" else None, max_pixels)
    store.sizes = sizes
    return store


def _check_common(scale: int, patch_size: int, val_patch_size: int | None, repeat: int, cache: str,
                  on_error: str) -> None:
    if scale < 1:
        raise ConfigError(f"must be >= 1, got {scale}", "scale")
    if patch_size < scale or patch_size % scale:
        raise ConfigError(f"must be a positive multiple of scale={scale}, got {patch_size}", "patch_size")
    if val_patch_size is not None and (val_patch_size < scale or val_patch_size % scale):
        raise ConfigError(f"must be a positive multiple of scale={scale}, got {val_patch_size}", "val_patch_size")
    if repeat < 1:
        raise ConfigError(f"must be >= 1, got {repeat}", "repeat")
    if cache not in ("memory", "none"):
        raise ConfigError(f"expected memory or none, got {cache!r}", "cache")
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"expected raise or skip, got {on_error!r}", "on_error")


def _random_crop_origin(h: int, w: int, patch: int, step: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner on a ``step`` grid such that a ``patch`` square fits in (h, w)."""
    top = step * int(rng.integers(0, (h - patch) // step + 1))
    left = step * int(rng.integers(0, (w - patch) // step + 1))
    return top, left


def _centre_origin(h: int, w: int, patch: int, step: int) -> tuple[int, int]:
    return step * (((h - patch) // 2) // step), step * (((w - patch) // 2) // step)


@DATASETS.register("sr_folder")
class SRFolder(Dataset):
    """HR images from a folder (or the embedded photos); LR made by MATLAB bicubic.

    Args:
        root: folder of HR images, or None for the embedded scikit-image photos.
        split: ``train`` (random aligned patches, augmented) or ``val`` (whole images
            cropped to a multiple of ``scale``, or a centre crop of ``val_patch_size``).
        scale: upscaling factor s; the LR image is HR / s.
        patch_size: HR training patch side (a multiple of ``scale``); LR side = patch / s.
        augment: random flips and transposes (all 8 rotations/reflections) of training patches.
        val_root: folder of validation HR images for a user ``root``.
        val_fraction: else, hold out the last ``ceil(n · fraction)`` files (sorted by name)
            of ``root`` for ``val``. With neither, ``val`` uses all of ``root`` (the usual
            case for benchmark folders such as Set5).
        val_patch_size: centre-crop validation images to this HR side (so they batch).
        cache: ``memory`` decodes every image once at construction (workers then share
            it); ``none`` reads from disk each time (for folders larger than RAM, e.g. DIV2K
            at ~6.6 GB decoded).
        repeat: the training split lists every image ``repeat`` times per epoch, so tiny
            folders still make epochs of a useful length.
        on_error: ``raise`` on an unreadable or too-small file, or ``skip`` it with a
            logged warning.
        recursive: also look for images in sub-folders.
        lr_quantize: round the LR image to 8 bits, as benchmark LR files are stored.
        max_pixels: refuse larger images (decompression-bomb guard of ``read_image``).
    """

    def __init__(self, root: str | None, split: str = "train", scale: int = 4, patch_size: int = 96,
                 augment: bool = True, val_root: str | None = None, val_fraction: float = 0.0,
                 val_patch_size: int | None = None, cache: Literal["memory", "none"] = "memory",
                 repeat: int = 1, on_error: Literal["raise", "skip"] = "raise", recursive: bool = False,
                 lr_quantize: bool = True, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        _check_split(split)
        _check_common(scale, patch_size, val_patch_size, repeat, cache, on_error)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"must be in [0, 1), got {val_fraction}", "val_fraction")
        self.split, self.scale, self.patch_size = split, scale, patch_size
        self.augment, self.val_patch_size, self.lr_quantize = augment, val_patch_size, lr_quantize
        self.repeat = repeat if split == "train" else 1
        need = patch_size if split == "train" else (val_patch_size or scale)

        def accept(path: Path, h: int, w: int) -> str | None:
            if h < need or w < need:
                what = "patch_size" if split == "train" else ("val_patch_size" if val_patch_size else "scale")
                return f"image {w}x{h} is smaller than {what}={need}"
            return None

        if root is None:
            names, arrays = load_embedded(split)
            self.store = _ImageStore(names, None, arrays, max_pixels)
            for n, a in zip(names, arrays):  # the embedded photos are all large enough for 96..256
                if accept(Path(n), *a.shape[:2]) is not None:
                    raise ConfigError(f"embedded image {n} ({a.shape[1]}x{a.shape[0]}) is smaller than {need}",
                                      "patch_size" if split == "train" else "val_patch_size")
        else:
            paths = self._split_paths(Path(root).expanduser(), split, val_root, val_fraction, recursive)
            self.store = _scan(paths, cache, on_error, max_pixels, accept)
            if len(self.store) == 0:
                raise DataError(f"{root}: no usable images for split {split!r} (all were skipped)")

    @staticmethod
    def _split_paths(root: Path, split: str, val_root: str | None, val_fraction: float,
                     recursive: bool) -> list[Path]:
        if val_root is not None:
            return list_images(root if split == "train" else Path(val_root).expanduser(), recursive)
        files = list_images(root, recursive)
        n_val = math.ceil(len(files) * val_fraction) if val_fraction > 0 else 0
        if n_val == 0:
            return files
        if n_val >= len(files):
            raise DataError(f"{root}: val_fraction={val_fraction} leaves no training image of {len(files)}")
        return files[:-n_val] if split == "train" else files[-n_val:]

    @property
    def names(self) -> list[str]:
        return self.store.names

    def __len__(self) -> int:
        return len(self.store) * self.repeat

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        i %= len(self.store)
        img = self.store.get(i)
        s = self.scale
        h, w = img.shape[:2]
        if self.split == "train":
            p = self.patch_size
            top, left = _random_crop_origin(h, w, p, s, rng)
            hr = img[top:top + p, left:left + p]
            if self.augment:
                (hr,) = _augment([hr], rng)
        elif self.val_patch_size is not None:
            p = self.val_patch_size
            top, left = _centre_origin(h, w, p, s)
            hr = img[top:top + p, left:left + p]
        else:
            hr = img[: h - h % s, : w - w % s]  # "modcrop": LR = HR / s exactly
        hr_t = _to_tensor(hr)
        return {"lr": make_lr(hr_t, s, self.lr_quantize), "hr": hr_t, "index": torch.tensor(i, dtype=torch.int64)}


def _lr_stem(stem: str, scale: int) -> str:
    """DIV2K names LR files ``0001x4.png`` for HR ``0001.png``: drop a trailing ``x{scale}``."""
    suffix = f"x{scale}"
    return stem[: -len(suffix)] if stem.lower().endswith(suffix) and len(stem) > len(suffix) else stem


def _find_subdir(root: Path, names: tuple[str, ...]) -> Path:
    for n in names:
        if (root / n).is_dir():
            return root / n
    raise DataError(f"{root}: no {' or '.join(names)} sub-folder (expected {root}/hr and {root}/lr)")


@DATASETS.register("sr_paired")
class SRPaired(Dataset):
    """HR/LR pairs from disk, matched by file name.

    Layout: ``root/hr/NAME.ext`` and ``root/lr/NAME.ext`` (``HR``/``LR`` also accepted;
    ``NAMEx4.ext`` LR names as in DIV2K match ``NAME``), or explicit ``hr_dir``/``lr_dir``.
    Each LR must be HR / scale: ``lr_h == hr_h // scale`` and ``lr_w == hr_w // scale``;
    the HR image is then cropped to ``lr · scale`` ("modcrop", as benchmark LR images were
    made from the modcropped HR). Anything else is a DataError naming the file.

    Args:
        root: folder with ``hr/`` and ``lr/`` (ignored for a folder given explicitly).
        split: ``train`` (aligned random patches, augmented) or ``val`` (whole images or
            centre crops). Use one root per split (``data.root``/``val_root`` in the YAML).
        scale, patch_size, augment, val_patch_size, cache, repeat, on_error, max_pixels:
            as for ``sr_folder``; ``patch_size`` is the HR side.
        hr_dir, lr_dir: explicit folders instead of ``root/hr`` and ``root/lr``.
        val_root: a folder with ``hr/`` + ``lr/`` used for ``split: val`` instead of ``root``.
    """

    def __init__(self, root: str | None, split: str = "train", scale: int = 4, patch_size: int = 96,
                 augment: bool = True, hr_dir: str | None = None, lr_dir: str | None = None,
                 val_root: str | None = None, val_patch_size: int | None = None,
                 cache: Literal["memory", "none"] = "memory", repeat: int = 1,
                 on_error: Literal["raise", "skip"] = "raise", max_pixels: int | None = DEFAULT_MAX_PIXELS):
        _check_split(split)
        _check_common(scale, patch_size, val_patch_size, repeat, cache, on_error)
        self.split, self.scale, self.patch_size = split, scale, patch_size
        self.augment, self.val_patch_size = augment, val_patch_size
        self.repeat = repeat if split == "train" else 1
        if split == "val" and val_root is not None:
            base = Path(val_root).expanduser()
            hr_path, lr_path = _find_subdir(base, ("hr", "HR")), _find_subdir(base, ("lr", "LR"))
        else:
            if root is None and (hr_dir is None or lr_dir is None):
                raise ConfigError("sr_paired needs root (with hr/ and lr/) or both hr_dir and lr_dir", "root")
            hr_path = Path(hr_dir).expanduser() if hr_dir is not None else _find_subdir(Path(root), ("hr", "HR"))
            lr_path = Path(lr_dir).expanduser() if lr_dir is not None else _find_subdir(Path(root), ("lr", "LR"))
        lr_by_stem: dict[str, Path] = {}
        for p in list_images(lr_path):
            lr_by_stem.setdefault(_lr_stem(p.stem, scale), p)
        need_lr = (patch_size if split == "train" else (val_patch_size or scale)) // scale
        names: list[str] = []
        self.hr_paths: list[Path] = []
        self.lr_paths: list[Path] = []
        hr_arrays: list[np.ndarray] = []
        lr_arrays: list[np.ndarray] = []
        for hp in list_images(hr_path):
            try:
                lp = lr_by_stem.get(hp.stem)
                if lp is None:
                    raise DataError(f"{hp}: no matching LR image named {hp.stem}.* or {hp.stem}x{scale}.* in {lr_path}")
                if cache == "memory":
                    ha, la = read_image(hp, max_pixels=max_pixels), read_image(lp, max_pixels=max_pixels)
                    (hh, hw), (lh, lw) = ha.shape[:2], la.shape[:2]
                else:
                    (hh, hw), (lh, lw) = image_size(hp, max_pixels), image_size(lp, max_pixels)
                if (lh, lw) != (hh // scale, hw // scale):
                    raise DataError(f"{lp}: LR size {lw}x{lh} × scale {scale} does not match HR {hp.name} "
                                    f"({hw}x{hh}); expected LR {hw // scale}x{hh // scale}")
                if lh < need_lr or lw < need_lr:
                    raise DataError(f"{lp}: LR image {lw}x{lh} is smaller than the LR patch {need_lr}")
            except DataError as e:
                if on_error == "raise":
                    raise
                log.warning("skipping %s", e)
                continue
            names.append(hp.stem)
            self.hr_paths.append(hp)
            self.lr_paths.append(lp)
            if cache == "memory":
                hr_arrays.append(ha)
                lr_arrays.append(la)
        if not names:
            raise DataError(f"{hr_path}: no usable HR/LR pairs (all were skipped)")
        self.names = names
        self._hr = hr_arrays if cache == "memory" else None
        self._lr = lr_arrays if cache == "memory" else None
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.names) * self.repeat

    def _pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._hr is not None and self._lr is not None:
            return self._hr[i], self._lr[i]
        return (read_image(self.hr_paths[i], max_pixels=self.max_pixels),
                read_image(self.lr_paths[i], max_pixels=self.max_pixels))

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        i %= len(self.names)
        hr, lr = self._pair(i)
        s = self.scale
        lh, lw = lr.shape[:2]
        if self.split == "train" or self.val_patch_size is not None:
            q = (self.patch_size if self.split == "train" else self.val_patch_size) // s  # type: ignore[operator]
            if self.split == "train":
                top, left = _random_crop_origin(lh, lw, q, 1, rng)
            else:
                top, left = _centre_origin(lh, lw, q, 1)
            lr = lr[top:top + q, left:left + q]
            hr = hr[top * s:(top + q) * s, left * s:(left + q) * s]
            if self.split == "train" and self.augment:
                hr, lr = _augment([hr, lr], rng)
        else:
            hr = hr[: lh * s, : lw * s]
        return {"lr": _to_tensor(lr), "hr": _to_tensor(hr), "index": torch.tensor(i, dtype=torch.int64)}


@DATASETS.register("sr_realworld")
class SRRealWorld(Dataset):
    """Fine-tuning data for real-world SR: HR photos (the ``realesr`` recipe synthesizes their
    LR on the device), paired LR/HR folders (their LR is kept as it is), or both mixed.

    Each sample carries ``paired`` (a bool tensor): False for a photo of ``root`` (its ``lr`` is
    the bicubic placeholder of ``sr_folder``, replaced by the recipe's degradation), True for a
    pair of ``paired_root`` (``sr_paired``: ``hr/`` + ``lr/``, LR = HR / scale).

    Args:
        root: folder of HR photos, or None (with ``paired_root``: pairs only; with neither:
            the embedded photos).
        paired_root: folder with ``hr/`` and ``lr/`` of real LR/HR pairs, or None.
        split: ``train`` or ``val``; ``val_root`` (HR photos) and ``paired_val_root`` (pairs)
            give the validation sets of each kind (neither: ``val`` is the HR photos of ``root``).
        paired_repeat: how many times the pairs are listed per epoch (defaults to ``repeat``),
            to weight real pairs against synthesized ones.
        scale, patch_size, augment, val_patch_size, cache, repeat, on_error, max_pixels: as
            ``sr_folder`` / ``sr_paired`` (``patch_size`` is the HR side for both).
    """

    def __init__(self, root: str | None, split: str = "train", paired_root: str | None = None, scale: int = 4,
                 patch_size: int = 96, augment: bool = True, val_root: str | None = None,
                 paired_val_root: str | None = None, val_patch_size: int | None = None,
                 cache: Literal["memory", "none"] = "memory", repeat: int = 1, paired_repeat: int | None = None,
                 on_error: Literal["raise", "skip"] = "raise", max_pixels: int | None = DEFAULT_MAX_PIXELS):
        _check_split(split)
        if paired_root is not None and not Path(paired_root).expanduser().is_dir():
            raise ConfigError(f"{paired_root}: no such folder (expected a folder with hr/ and lr/)", "data.paired_root")
        if paired_repeat is not None and paired_repeat < 1:
            raise ConfigError(f"must be >= 1, got {paired_repeat}", "paired_repeat")
        common = {"scale": scale, "patch_size": patch_size, "augment": augment, "val_patch_size": val_patch_size,
                  "cache": cache, "on_error": on_error, "max_pixels": max_pixels}
        self.scale, self.patch_size = scale, patch_size
        self.parts: list[tuple[Dataset, bool]] = []
        photos = root is not None or paired_root is None
        if split == "val" and paired_root is not None and val_root is None and paired_val_root is not None:
            photos = False  # validation on the held-out pairs only
        if photos:
            self.parts.append((SRFolder(root, split, val_root=val_root, repeat=repeat, **common), False))
        if paired_root is not None and (split == "train" or paired_val_root is not None):
            n = paired_repeat if paired_repeat is not None else repeat
            self.parts.append((SRPaired(paired_root, split, val_root=paired_val_root, repeat=n, **common), True))
        if not self.parts:
            raise ConfigError("no validation data: give data.val_root (photos) or data.paired_val_root (pairs)",
                              "data.val_root")
        self.names = [name for ds, _ in self.parts for name in ds.names]

    def __len__(self) -> int:
        return sum(len(ds) for ds, _ in self.parts)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, seed = index if isinstance(index, tuple) else (int(index), int(index))  # seed: as split_index
        offset = 0  # the index of a sample within all names (for the seeded validation degradation)
        for ds, paired in self.parts:
            if i < len(ds):
                item = ds[(i, seed)]
                item["index"] = item["index"] + offset
                item["paired"] = torch.tensor(paired)
                return item
            i -= len(ds)
            offset += len(ds.names)
        raise IndexError(index)


__all__ = ["SRFolder", "SRPaired", "SRRealWorld", "make_lr", "load_embedded", "EMBEDDED_TRAIN", "EMBEDDED_VAL"]
