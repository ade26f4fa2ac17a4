"""Array ↔ tensor converters shared by the training datasets and the inference pipelines.

Both wings import these from here, so running a model never imports a training dataset
module (``tests/e2e/test_layers.py`` checks it). numpy images are HWC uint8 in [0, 255];
tensors are CHW float32 in [-1, 1] (the pix2pix / CycleGAN convention, Isola et al. 2017).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .io import _convert_layout

__all__ = ["to_tensor", "to_channels", "resize_bicubic"]


def resize_bicubic(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize (as pix2pix); uint8 (H, W, C) -> (height, width, C)."""
    if img.shape[:2] == (height, width):
        return img
    squeeze = img.shape[2] == 1
    pil = Image.fromarray(img[..., 0] if squeeze else img)
    out = np.asarray(pil.resize((width, height), Image.Resampling.BICUBIC))
    return out[..., None] if squeeze else out


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) / (H, W, 1|2|3|4) uint8 -> (H, W, channels); colour -> gray uses BT.601 luma.

    Gray+alpha and RGBA arrays (from the Python API) are composited on white, as
    :func:`~i2i.data.io.read_image` does for files.
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image: expected (H, W) or (H, W, 1|2|3|4) channels, got shape {tuple(img.shape)}")
    if img.shape[2] == channels:
        return img
    if channels not in (1, 3):
        raise ValueError(f"channels: expected 1 or 3, got {channels}")
    if img.shape[2] in (2, 4):
        out = _convert_layout(img, "LA" if img.shape[2] == 2 else "RGBA", "L" if channels == 1 else "RGB",
                              "white", "uint8")
        return out[..., None] if out.ndim == 2 else out
    if channels == 1:
        gray = img[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.round(gray).clip(0, 255).astype(np.uint8)[..., None]
    return np.repeat(img[..., :1], 3, axis=2)


def to_tensor(img: np.ndarray) -> Tensor:
    """(H, W, C) uint8 [0, 255] -> (C, H, W) float32 [-1, 1]."""
    # np.array copies: the input may be a read-only decoder buffer or a view of a cached photo
    return torch.from_numpy(np.array(img.transpose(2, 0, 1), dtype=np.float32)).div_(127.5).sub_(1.0)
