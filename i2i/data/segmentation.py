"""Semantic-segmentation datasets: items ``{"image": (3, H, W) float in [0, 1], "mask": (H, W) int64}``.

Mask values are class indices in [0, C) or :data:`IGNORE_INDEX` (255) for pixels that are
not labelled (VOC's "void" borders, Cityscapes' unlisted ids, padding added by
augmentation). Images stay in [0, 1]; the segmentors normalise inside.

Layouts (details and download steps in ``datasets/segmentation.md``):

* ``voc``: Pascal VOC 2012 -- ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``
  (palette PNGs whose indices are the class ids, 255 = void) and
  ``ImageSets/Segmentation/<split>.txt`` (Everingham et al., IJCV 2010).
* ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/*_gtFine_labelIds.png``, label ids mapped to the 19 standard
  train ids (Cordts et al., CVPR 2016; the table of the official ``labels.py``).
* ``seg_folder``: ``images/<split>/`` + ``masks/<split>/`` and a class table (YAML),
  masks as index PNGs or colour PNGs.
* ``seg_mosaic``: the embedded default, generated in memory from photos bundled with
  scikit-image (see :class:`SegMosaicDataset`); always available offline.

Joint augmentation (:func:`joint_augment`, on ``torchvision.transforms.v2``: see
:mod:`i2i.data.transforms`): random scale, random crop (padding images with 0 and masks with
255 where the scaled image is smaller than the crop) and horizontal flip, bilinear
(antialiased) for the image and nearest-exact for the mask, so the ignore label survives
intact. All randomness comes from :func:`i2i.data.base.split_index`.

A mask value that is neither a class of the table nor the ignore value raises
:class:`~i2i.errors.DataError` naming the file and the offending values.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from .base import split_index
from .io import list_images, read_image, read_mask
from .palette import pascal_palette
from .transforms import seeded, segmentation_train

__all__ = [
    "IGNORE_INDEX", "VOC_CLASSES", "VOC_PALETTE", "CITYSCAPES_CLASSES", "CITYSCAPES_PALETTE", "CITYSCAPES_TRAIN_IDS",
    "MOSAIC_CLASSES", "MOSAIC_PALETTE", "pascal_palette", "joint_augment", "center_fit", "ClassTable",
    "VOCSegmentation", "CityscapesSegmentation", "SegFolderDataset", "SegMosaicDataset",
]

IGNORE_INDEX = 255

# --- class tables -------------------------------------------------------------------------
VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


VOC_PALETTE: tuple[tuple[int, int, int], ...] = tuple(pascal_palette(21))

# Cityscapes: (label id, train id, name, colour) for the 19 evaluated classes, from the
# official cityscapesScripts ``helpers/labels.py``; every other id in 0..33 is ignored.
_CITYSCAPES = (
    (7, 0, "road", (128, 64, 128)), (8, 1, "sidewalk", (244, 35, 232)), (11, 2, "building", (70, 70, 70)),
    (12, 3, "wall", (102, 102, 156)), (13, 4, "fence", (190, 153, 153)), (17, 5, "pole", (153, 153, 153)),
    (19, 6, "traffic light", (250, 170, 30)), (20, 7, "traffic sign", (220, 220, 0)),
    (21, 8, "vegetation", (107, 142, 35)), (22, 9, "terrain", (152, 251, 152)), (23, 10, "sky", (70, 130, 180)),
    (24, 11, "person", (220, 20, 60)), (25, 12, "rider", (255, 0, 0)), (26, 13, "car", (0, 0, 142)),
    (27, 14, "truck", (0, 0, 70)), (28, 15, "bus", (0, 60, 100)), (31, 16, "train", (0, 80, 100)),
    (32, 17, "motorcycle", (0, 0, 230)), (33, 18, "bicycle", (119, 11, 32)),
)
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(c[2] for c in _CITYSCAPES)
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = tuple(c[3] for c in _CITYSCAPES)
CITYSCAPES_TRAIN_IDS: dict[int, int] = {i: IGNORE_INDEX for i in range(34)} | {c[0]: c[1] for c in _CITYSCAPES}
"""Cityscapes label id (0..33) -> train id (0..18, or 255 = ignore)."""

MOSAIC_CLASSES: tuple[str, ...] = ("wall", "grass", "gravel", "cat", "rocket", "coffee_disc", "coffee_square")
MOSAIC_PALETTE: tuple[tuple[int, int, int], ...] = (
    (170, 80, 60), (70, 160, 60), (140, 140, 140), (240, 170, 40), (60, 90, 210), (120, 60, 20), (220, 80, 220),
)


def _lut(mapping: dict[int, int], size: int = 65536) -> np.ndarray:
    """Raw value -> class index; -1 marks values that are not in the table."""
    lut = np.full(size, -1, dtype=np.int64)
    for raw, cls in mapping.items():
        lut[raw] = cls
    return lut


def _map_mask(raw: np.ndarray, lut: np.ndarray, path: Path | str, what: str) -> np.ndarray:
    """Apply a LUT; values outside it are a DataError naming the file and the values."""
    inside = (raw >= 0) & (raw < len(lut))
    out = np.where(inside, lut[np.clip(raw, 0, len(lut) - 1)], -1)
    if (out < 0).any():
        bad = np.unique(raw[out < 0])
        shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise DataError(f"{path}: mask values {shown} are not in the class table ({what})")
    return out


# --- augmentation -------------------------------------------------------------------------
def _image_tensor(a: np.ndarray) -> Tensor:
    """(H, W, 3) float32 in [0, 1] or uint8 -> (3, H, W) float32 in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    t = t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()
    return t.permute(2, 0, 1).contiguous()


def _resize_pair(image: Tensor, mask: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Bilinear (antialiased when shrinking) for the image, nearest for the mask."""
    if (h, w) == tuple(mask.shape):
        return image, mask
    shrink = h < mask.shape[0] or w < mask.shape[1]
    image = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)[0]
    # labels are small integers: exact in float32, so nearest keeps 255 and every class id
    mask = F.interpolate(mask[None, None].float(), size=(h, w), mode="nearest-exact")[0, 0].long()
    return image.clamp_(0, 1), mask


def _pad_to(image: Tensor, mask: Tensor, h: int, w: int, ignore_index: int) -> tuple[Tensor, Tensor]:
    ph, pw = max(0, h - mask.shape[0]), max(0, w - mask.shape[1])
    if ph or pw:  # bottom/right: the content keeps its coordinates
        image = F.pad(image, (0, pw, 0, ph), value=0.0)
        mask = F.pad(mask, (0, pw, 0, ph), value=ignore_index)
    return image, mask


def joint_augment(image: Tensor, mask: Tensor, rng: np.random.Generator, crop_size: int | None = None,
                  scale: tuple[float, float] = (0.5, 2.0), hflip: bool = True,
                  ignore_index: int = IGNORE_INDEX) -> tuple[Tensor, Tensor]:
    """Random scale -> pad (image 0, mask ``ignore_index``) -> random crop -> random h-flip.

    The pipeline is :func:`i2i.data.transforms.segmentation_train` (torchvision v2), run
    with a seed drawn from ``rng``: the result is a pure function of the inputs and ``rng``.

    Args:
        image: (3, H, W) float in [0, 1].
        mask: (H, W) int64 class ids / ``ignore_index``.
        rng: the per-sample generator from :func:`split_index`.
        crop_size: output side; ``None`` = the input's own (H, W).
        scale: range of the random scale factor (uniform).
        hflip: flip left-right with probability 1/2.

    Returns:
        image (3, h, w) float in [0, 1], mask (h, w) int64 with h, w = crop size.
    """
    h0, w0 = mask.shape
    out = (crop_size, crop_size) if crop_size else (h0, w0)
    t = segmentation_train((int(h0), int(w0)), out, (float(scale[0]), float(scale[1])), bool(hflip), int(ignore_index))
    image, mask = seeded(t, rng, tv_tensors.Image(image), tv_tensors.Mask(mask))
    return image.as_subclass(Tensor).clamp(0, 1).contiguous(), mask.as_subclass(Tensor).contiguous()


def center_fit(image: Tensor, mask: Tensor, crop_size: int, ignore_index: int = IGNORE_INDEX) -> tuple[Tensor, Tensor]:
    """Evaluation: pad (ignore) and centre-crop to ``crop_size`` × ``crop_size``, no resampling."""
    image, mask = _pad_to(image, mask, crop_size, crop_size, ignore_index)
    top, left = (mask.shape[0] - crop_size) // 2, (mask.shape[1] - crop_size) // 2
    return (image[:, top:top + crop_size, left:left + crop_size].contiguous(),
            mask[top:top + crop_size, left:left + crop_size].contiguous())


def _short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    return (size, max(1, round(w * size / h))) if h <= w else (max(1, round(h * size / w)), size)


class _SegBase(Dataset):
    """Shared item logic: load -> [resize short side] -> augment (train) or centre-fit (eval).

    Subclasses set ``self.samples`` and implement ``_load(i) -> (image (3,H,W), mask (H,W))``.
    """

    classes: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()

    def __init__(self, split: str, crop_size: int | None, scale: tuple[float, float], hflip: bool,
                 augment: bool | None, resize: int | None):
        if crop_size is not None and crop_size < 1:
            raise ConfigError(f"must be >= 1, got {crop_size}", "crop_size")
        if resize is not None and resize < 1:
            raise ConfigError(f"must be >= 1, got {resize}", "resize")
        if not (0 < scale[0] <= scale[1]):
            raise ConfigError(f"expected 0 < min <= max, got {list(scale)}", "scale")
        self.split = split
        self.crop_size = crop_size
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip = hflip
        self.augment = (split == "train") if augment is None else augment
        self.resize = resize
        self.samples: list[Any] = []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, i: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Tensor]:
        i, rng = split_index(index)
        image, mask = self._load(i)
        if self.resize is not None:
            image, mask = _resize_pair(image, mask, *_short_side_size(*mask.shape, self.resize))
        if self.augment:
            image, mask = joint_augment(image, mask, rng, self.crop_size, self.scale, self.hflip)
        elif self.crop_size is not None:
            image, mask = center_fit(image, mask, self.crop_size)
        return {"image": image, "mask": mask}


def _read_pair(image_path: Path, mask_path: Path) -> tuple[Tensor, np.ndarray]:
    if not mask_path.is_file():
        raise DataError(f"{mask_path}: mask missing for image {image_path}")
    image = _image_tensor(read_image(image_path, mode="RGB", dtype="float32"))
    raw = read_mask(mask_path)
    if raw.shape != tuple(image.shape[1:]):
        raise DataError(f"{mask_path}: mask is {raw.shape[1]}×{raw.shape[0]} but image {image_path.name} is "
                        f"{image.shape[2]}×{image.shape[1]}")
    return image, raw


# --- Pascal VOC ---------------------------------------------------------------------------
@DATASETS.register("voc")
class VOCSegmentation(_SegBase):
    """Pascal VOC 2012 segmentation (21 classes, 255 = void).

    Args:
        root: the ``VOC2012`` folder (or a ``VOCdevkit`` folder that contains it).
        split: a list in ``ImageSets/Segmentation`` (``train``, ``val``, ``trainval``).
        mask_dir: ``SegmentationClass`` (or ``SegmentationClassAug`` for the SBD-augmented set).
        crop_size: training crop / evaluation centre-fit side (``None``: full images,
            batch size 1 then).
        scale, hflip, augment: see :func:`joint_augment`; ``augment=None`` = only for ``train``.
        resize: resize the shorter side to this before augmentation (``None``: keep).
    """

    classes = VOC_CLASSES
    palette = VOC_PALETTE

    def __init__(self, root: str | None, split: str = "train", mask_dir: str = "SegmentationClass",
                 crop_size: int | None = 320, scale: tuple[float, float] = (0.5, 2.0), hflip: bool = True,
                 augment: bool | None = None, resize: int | None = None):
        super().__init__(split, crop_size, scale, hflip, augment, resize)
        if root is None:
            raise ConfigError("voc needs the path of VOCdevkit/VOC2012 (see datasets/segmentation.md)", "root")
        base = Path(root).expanduser()
        if (base / "VOC2012").is_dir():
            base = base / "VOC2012"
        list_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            raise DataError(f"{list_file}: split list not found (expected VOC2012/ImageSets/Segmentation/{split}.txt)")
        ids = [ln.strip().split()[0] for ln in list_file.read_text().splitlines() if ln.strip()]
        self.samples = [(base / "JPEGImages" / f"{n}.jpg", base / mask_dir / f"{n}.png") for n in ids]
        self._lut = _lut({i: i for i in range(len(VOC_CLASSES))} | {IGNORE_INDEX: IGNORE_INDEX}, 256)

    def _load(self, i: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.samples[i]
        image, raw = _read_pair(image_path, mask_path)
        return image, torch.from_numpy(_map_mask(raw, self._lut, mask_path, "VOC: 0..20, 255 = void"))


# --- Cityscapes ---------------------------------------------------------------------------
@DATASETS.register("cityscapes")
class CityscapesSegmentation(_SegBase):
    """Cityscapes fine annotations, 19 train ids (255 = ignore).

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train``, ``val`` or ``test`` (test labels are all ignore).
        crop_size, scale, hflip, augment, resize: as :class:`VOCSegmentation`. The images
            are 2048×1024; ``resize: 512`` (shorter side) makes CPU runs possible.
    """

    classes = CITYSCAPES_CLASSES
    palette = CITYSCAPES_PALETTE

    def __init__(self, root: str | None, split: str = "train", crop_size: int | None = 512,
                 scale: tuple[float, float] = (0.5, 2.0), hflip: bool = True, augment: bool | None = None,
                 resize: int | None = None):
        super().__init__(split, crop_size, scale, hflip, augment, resize)
        if root is None:
            raise ConfigError("cityscapes needs the folder holding leftImg8bit/ and gtFine/", "root")
        base = Path(root).expanduser()
        img_dir = base / "leftImg8bit" / split
        if not img_dir.is_dir():
            raise DataError(f"{img_dir}: not found (expected leftImg8bit/{split}/<city>/*_leftImg8bit.png)")
        suffix = "_leftImg8bit"
        for p in list_images(img_dir, recursive=True):
            if not p.stem.endswith(suffix):
                continue
            stem = p.stem[: -len(suffix)]
            mask = base / "gtFine" / split / p.parent.name / f"{stem}_gtFine_labelIds.png"
            self.samples.append((p, mask))
        if not self.samples:
            raise DataError(f"{img_dir}: no *_leftImg8bit images")
        self._lut = _lut(CITYSCAPES_TRAIN_IDS, 256)

    def _load(self, i: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.samples[i]
        image, raw = _read_pair(image_path, mask_path)
        return image, torch.from_numpy(_map_mask(raw, self._lut, mask_path, "Cityscapes label ids 0..33"))


# --- image folder + class table -----------------------------------------------------------
class ClassTable:
    """A dataset's classes: names, colours, raw mask values and what marks "ignore".

    YAML form (a file, or the same mapping/list given inline)::

        ignore_value: 255              # raw value of unlabelled pixels in index masks
        ignore_color: [224, 224, 192]  # colour of unlabelled pixels in colour masks (optional)
        classes:
          - {name: background, color: [0, 0, 0]}
          - {name: road, color: [128, 64, 128], value: 7}   # value: raw id in index masks

    Class k is the k-th entry. ``value`` defaults to k; ``color`` is required for colour
    masks and otherwise only used for display (default: the VOC colour map).
    """

    def __init__(self, spec: dict[str, Any] | list[Any], source: str = "classes"):
        if isinstance(spec, list):
            spec = {"classes": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("classes"), list) or not spec["classes"]:
            raise ConfigError("class table needs a non-empty 'classes' list", source)
        unknown = set(spec) - {"classes", "ignore_value", "ignore_color"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}; allowed: classes, ignore_value, ignore_color", source)
        self.source = source
        self.ignore_value = int(spec.get("ignore_value", IGNORE_INDEX))
        ic = spec.get("ignore_color")
        self.ignore_color = tuple(self._colour(ic, f"{source}.ignore_color")) if ic is not None else None
        default_colours = pascal_palette(len(spec["classes"]))
        self.names: list[str] = []
        self.colors: list[tuple[int, int, int]] = []
        self.values: list[int] = []
        self.has_colors = True
        for k, entry in enumerate(spec["classes"]):
            key = f"{source}.classes[{k}]"
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError("each class needs a 'name' (and optional 'color', 'value')", key)
            extra = set(entry) - {"name", "color", "value"}
            if extra:
                raise ConfigError(f"unknown keys {sorted(extra)}; allowed: name, color, value", key)
            self.names.append(entry["name"])
            if "color" in entry:
                self.colors.append(self._colour(entry["color"], f"{key}.color"))
            else:
                self.has_colors = False
                self.colors.append(default_colours[k])
            v = entry.get("value", k)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 65536:
                raise ConfigError(f"value must be an int in [0, 65535], got {v!r}", f"{key}.value")
            self.values.append(v)
        if len(set(self.values)) != len(self.values) or self.ignore_value in self.values:
            raise ConfigError("class values must be distinct and differ from ignore_value", source)
        if len(set(self.colors)) != len(self.colors):
            raise ConfigError("class colours must be distinct", source)

    @staticmethod
    def _colour(c: Any, key: str) -> tuple[int, int, int]:
        if not (isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(x, int) and 0 <= x <= 255 for x in c)):
            raise ConfigError(f"expected [r, g, b] with ints in 0..255, got {c!r}", key)
        return (int(c[0]), int(c[1]), int(c[2]))

    @classmethod
    def load(cls, classes: str | list[Any] | dict[str, Any], root: Path | None) -> "ClassTable":
        if not isinstance(classes, str):
            return cls(classes)
        import yaml

        path = Path(classes).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        if not path.is_file():
            raise ConfigError(f"class table {path} not found", "classes")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})", "classes") from None
        return cls(spec, str(path))

    def index_lut(self) -> np.ndarray:
        return _lut({v: k for k, v in enumerate(self.values)} | {self.ignore_value: IGNORE_INDEX})

    def map_colors(self, rgb: np.ndarray, path: Path | str) -> np.ndarray:
        """(H, W, 3) uint8 colours -> (H, W) class ids; unknown colours are a DataError."""
        if not self.has_colors:
            raise ConfigError("colour masks need a 'color' for every class", self.source)
        code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        table = {(r << 16) | (g << 8) | b: k for k, (r, g, b) in enumerate(self.colors)}
        if self.ignore_color is not None:
            r, g, b = self.ignore_color
            table[(r << 16) | (g << 8) | b] = IGNORE_INDEX
        keys = np.array(sorted(table), dtype=np.int64)
        vals = np.array([table[k] for k in keys], dtype=np.int64)
        pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
        found = keys[pos] == code
        if not found.all():
            bad = np.unique(code[~found])[:10]
            shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in bad)
            raise DataError(f"{path}: mask colours {shown} are not in the class table")
        return vals[pos]


@DATASETS.register("seg_folder")
class SegFolderDataset(_SegBase):
    """Images and masks in two folders, classes from a YAML table (:class:`ClassTable`).

    Layout: ``root/<images>/<split>/x.jpg`` and ``root/<masks>/<split>/x<mask_suffix>.png``
    (matched by file stem; sub-folders allowed and mirrored).

    Args:
        root: the dataset folder.
        split: sub-folder name under ``images`` and ``masks``.
        classes: path of the class-table YAML (relative to ``root`` unless absolute), or
            the table inline (a list of classes, or the full mapping).
        mask_format: ``index`` (palette/grayscale PNG of raw values) or ``color`` (RGB
            PNG mapped through the table's colours).
        images, masks: the two folder names; mask_suffix: appended to the image stem.
        crop_size, scale, hflip, augment, resize: as :class:`VOCSegmentation`.
    """

    def __init__(self, root: str | None, split: str = "train", classes: str | list[Any] | dict[str, Any] = "classes.yaml",
                 mask_format: Literal["index", "color"] = "index", images: str = "images", masks: str = "masks",
                 mask_suffix: str = "", crop_size: int | None = None, scale: tuple[float, float] = (0.5, 2.0),
                 hflip: bool = True, augment: bool | None = None, resize: int | None = None):
        super().__init__(split, crop_size, scale, hflip, augment, resize)
        if root is None:
            raise ConfigError("seg_folder needs a dataset folder", "root")
        if mask_format not in ("index", "color"):
            raise ConfigError(f"expected index or color, got {mask_format!r}", "mask_format")
        base = Path(root).expanduser()
        self.table = ClassTable.load(classes, base)
        self.classes = tuple(self.table.names)
        self.palette = tuple(self.table.colors)
        self.mask_format = mask_format
        img_dir, mask_dir = base / images / split, base / masks / split
        if not img_dir.is_dir():
            raise DataError(f"{img_dir}: not found (expected {images}/{split}/ under {base})")
        for p in list_images(img_dir, recursive=True):
            rel = p.relative_to(img_dir)
            self.samples.append((p, mask_dir / rel.parent / f"{p.stem}{mask_suffix}.png"))
        if not self.samples:
            raise DataError(f"{img_dir}: no images")
        self._lut = self.table.index_lut() if mask_format == "index" else None

    def _load(self, i: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.samples[i]
        if self.mask_format == "index":
            image, raw = _read_pair(image_path, mask_path)
            return image, torch.from_numpy(_map_mask(raw, self._lut, mask_path, f"values {self.table.values}, "
                                                                                 f"ignore {self.table.ignore_value}"))
        if not mask_path.is_file():
            raise DataError(f"{mask_path}: mask missing for image {image_path}")
        image = _image_tensor(read_image(image_path, mode="RGB", dtype="float32"))
        rgb = read_image(mask_path, mode="RGB", dtype="uint8")
        if rgb.shape[:2] != tuple(image.shape[1:]):
            raise DataError(f"{mask_path}: mask size {rgb.shape[1]}×{rgb.shape[0]} differs from its image")
        return image, torch.from_numpy(self.table.map_colors(rgb, mask_path))


# --- the embedded mosaic ------------------------------------------------------------------
# (source, downsampling factor, RGB tint for grayscale textures or None for colour photos)
_SOURCES: dict[str, tuple[str, int, tuple[float, float, float] | None]] = {
    "wall": ("brick", 4, (1.0, 0.55, 0.42)),
    "grass": ("grass", 4, (0.55, 0.95, 0.45)),
    "gravel": ("gravel", 4, (0.85, 0.82, 0.78)),
    "cat": ("chelsea", 2, None),
    "rocket": ("rocket", 3, None),
    "coffee": ("coffee", 3, None),
}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_DEFAULT_COUNT = {"train": 400, "val": 100, "test": 100}


@functools.lru_cache(maxsize=32)
def _texture(key: str, min_side: int) -> np.ndarray:
    """A bundled scikit-image photo as (H, W, 3) float32 in [0, 1], block-averaged down
    by the table's factor (less if that would make it smaller than ``min_side``)."""
    from skimage import data as skdata

    name, factor, tint = _SOURCES[key]
    a = getattr(skdata, name)().astype(np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None] * np.asarray(tint, dtype=np.float32)
    f = max(1, min(factor, min(a.shape[:2]) // max(1, min_side)))
    h, w = a.shape[0] // f * f, a.shape[1] // f * f
    a = a[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))
    if min(a.shape[:2]) < min_side:  # sizes beyond the photo: tile it (mirrored, no seams)
        reps = int(np.ceil(min_side / min(a.shape[:2])))
        a = np.pad(a, ((0, a.shape[0] * reps), (0, a.shape[1] * reps), (0, 0)), mode="symmetric")
    return np.ascontiguousarray(a.clip(0, 1))


def _patch(key: str, h: int, w: int, min_side: int, rng: np.random.Generator) -> np.ndarray:
    src = _texture(key, min_side)
    top = int(rng.integers(0, src.shape[0] - h + 1))
    left = int(rng.integers(0, src.shape[1] - w + 1))
    return src[top:top + h, left:left + w] * np.float32(rng.uniform(0.85, 1.15))


def _shape_mask(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A random object shape of class ``kind``: a full-size bool mask and its bounding box."""
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    if kind == "cat":  # rotated ellipse, aspect 1.3-1.8
        a = rng.uniform(0.14, 0.24) * s
        b = a / rng.uniform(1.3, 1.8)
        t = rng.uniform(0, np.pi)
        hw = np.sqrt((a * np.cos(t)) ** 2 + (b * np.sin(t)) ** 2)
        hh = np.sqrt((a * np.sin(t)) ** 2 + (b * np.cos(t)) ** 2)
        cy, cx = rng.uniform(hh, s - hh), rng.uniform(hw, s - hw)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        m = (u / a) ** 2 + (v / b) ** 2 <= 1
    elif kind == "rocket":  # upright rectangle, height 2-3× width
        w = rng.uniform(0.09, 0.14) * s
        h = min(w * rng.uniform(2.0, 3.0), 0.9 * s)
        cy, cx = rng.uniform(h / 2, s - h / 2), rng.uniform(w / 2, s - w / 2)
        m = (np.abs(xx - cx) <= w / 2) & (np.abs(yy - cy) <= h / 2)
    elif kind == "coffee_disc":  # circle
        r = rng.uniform(0.1, 0.17) * s
        cy, cx = rng.uniform(r, s - r), rng.uniform(r, s - r)
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    else:  # coffee_square: axis-aligned square
        a = rng.uniform(0.18, 0.3) * s
        cy, cx = rng.uniform(a / 2, s - a / 2), rng.uniform(a / 2, s - a / 2)
        m = (np.abs(xx - cx) <= a / 2) & (np.abs(yy - cy) <= a / 2)
    if not m.any():
        return None
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    return m, (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    out = m.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def mosaic_sample(size: int, seed: int, split: str, index: int, ignore_border: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One mosaic image: (size, size, 3) uint8 and its (size, size) uint8 label map.

    A pure function of its arguments (NumPy generator seeded by ``[seed, split, index]``).
    See :class:`SegMosaicDataset` for the scene model.
    """
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    image = np.zeros((s, s, 3), np.float32)
    label = np.zeros((s, s), np.uint8)
    # background: a wall above a sloped horizon, grass or gravel below it
    horizon = rng.uniform(0.3, 0.7) * s + rng.uniform(-0.3, 0.3) * (xx - s / 2)
    ground_cls = 1 if rng.random() < 0.5 else 2
    below = yy >= horizon
    image[:] = _patch("wall", s, s, s, rng)
    image[below] = _patch(MOSAIC_CLASSES[ground_cls], s, s, s, rng)[below]
    label[below] = ground_cls
    # 1-3 non-overlapping objects (2 px apart), classes 3..6
    taken = np.zeros((s, s), bool)
    void = np.zeros((s, s), bool)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(3, len(MOSAIC_CLASSES)))
        kind = MOSAIC_CLASSES[cls]
        for _attempt in range(20):
            shape = _shape_mask(kind, s, rng)
            if shape is not None and not (shape[0] & taken).any():
                break
        else:
            continue
        m, (r0, r1, c0, c1) = shape
        src = "coffee" if kind.startswith("coffee") else kind
        tex = _patch(src, r1 - r0, c1 - c0, s, rng)
        sub = m[r0:r1, c0:c1]
        image[r0:r1, c0:c1][sub] = tex[sub]
        label[m] = cls
        taken |= _dilate(m, 2 + ignore_border)
        if ignore_border > 0:
            void |= _dilate(m, ignore_border) & ~m
    label[void & (label < 3)] = IGNORE_INDEX
    image += rng.normal(0.0, 0.02, image.shape).astype(np.float32)  # sensor noise: no exact colour cues
    return (image.clip(0, 1) * 255 + 0.5).astype(np.uint8), label


@functools.lru_cache(maxsize=8)
def _mosaic_split(size: int, count: int, seed: int, split: str, ignore_border: int) -> tuple[Tensor, Tensor]:
    """The whole split, generated once per process: (N, 3, S, S) uint8 and (N, S, S) uint8."""
    images, labels = zip(*(mosaic_sample(size, seed, split, i, ignore_border) for i in range(count)))
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.stack(labels)))


@DATASETS.register("seg_mosaic")
class SegMosaicDataset(_SegBase):
    """Embedded segmentation set: scenes assembled from photos bundled with scikit-image.

    Every image is generated in memory, deterministically from ``(seed, split, index)``,
    with exact labels; it needs no files and no network. The scene model:

    * background: a **wall** (scikit-image ``brick``, tinted) above a sloped horizon and
      **grass** (``grass``) or **gravel** (``gravel``) below it;
    * 1-3 non-overlapping objects, each a crop of a photo inside a shape that is
      characteristic of its class:

      ===  ==============  ====================  ==========================================
      id   class           texture               shape
      ===  ==============  ====================  ==========================================
      0    wall            brick (reddish tint)  region above the horizon
      1    grass           grass (green tint)    region below the horizon (half the images)
      2    gravel          gravel (grey tint)    region below the horizon (other half)
      3    cat             chelsea               rotated ellipse, aspect 1.3-1.8
      4    rocket          rocket                upright rectangle, height 2-3× width
      5    coffee_disc     coffee                circle
      6    coffee_square   coffee                axis-aligned square
      ===  ==============  ====================  ==========================================

    Classes 5 and 6 share their texture: only the outline tells them apart, which a
    per-pixel classifier with a small receptive field cannot see but a label-map prior
    (the adversary) can. The cat's orange fur also resembles the tinted wall.
    ``ignore_border`` pixels just outside every object are labelled 255, like VOC's void
    outlines. Each texture crop gets a random brightness (×0.85-1.15) and the image
    Gaussian noise (σ = 0.02).

    Args:
        root: must be ``None`` (nothing is read from disk).
        split: ``train`` (400 images by default), ``val`` or ``test`` (100 each);
            different splits use disjoint random streams.
        size: side of the square images (≥ 16).
        num_images: override the split's image count.
        seed: generator seed.
        ignore_border: width of the void band around objects (0 = none).
        crop_size, scale, hflip, augment: see :func:`joint_augment`; ``crop_size=None``
            keeps ``size``; ``augment=None`` = only for ``train``.
    """

    classes = MOSAIC_CLASSES
    palette = MOSAIC_PALETTE

    def __init__(self, root: str | None = None, split: str = "train", size: int = 64, num_images: int | None = None,
                 seed: int = 0, ignore_border: int = 1, crop_size: int | None = None,
                 scale: tuple[float, float] = (0.8, 1.25), hflip: bool = True, augment: bool | None = None):
        super().__init__(split, crop_size, scale, hflip, augment, None)
        if root is not None:
            raise ConfigError("seg_mosaic is generated in memory; set root: null", "root")
        if split not in _SPLIT_CODE:
            raise ConfigError(f"expected one of {', '.join(_SPLIT_CODE)}, got {split!r}", "split")
        if size < 16:
            raise ConfigError(f"must be >= 16, got {size}", "size")
        if num_images is not None and num_images < 1:
            raise ConfigError(f"must be >= 1, got {num_images}", "num_images")
        if ignore_border < 0:
            raise ConfigError(f"must be >= 0, got {ignore_border}", "ignore_border")
        count = num_images if num_images is not None else _DEFAULT_COUNT[split]
        self.images, self.masks = _mosaic_split(size, count, seed, split, ignore_border)
        self.samples = list(range(count))

    def _load(self, i: int) -> tuple[Tensor, Tensor]:
        return self.images[i].float().div(255.0), self.masks[i].long()

