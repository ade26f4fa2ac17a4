"""MATLAB-compatible bicubic ``imresize``: the one resize used for SR data, metrics and baselines.

Super-resolution results are only comparable when the low-resolution inputs are made the
way the literature makes them: MATLAB's ``imresize(I, 1/s, 'bicubic')`` (SRCNN, SRGAN,
EDSR and the Set5/Set14/BSD100/DIV2K benchmarks all use it). This module reproduces that
algorithm from its documented definition:

* **Kernel**: Keys' cubic convolution with a = -0.5 (Keys, "Cubic convolution
  interpolation for digital image processing", IEEE TASSP 1981, eq. 15)::

      k(x) = 1.5|x|³ - 2.5|x|² + 1             for |x| <= 1
           = -0.5|x|³ + 2.5|x|² - 4|x| + 2      for 1 < |x| < 2
           = 0                                  otherwise

* **Coordinate map** (pixel centres, 1-based as in MATLAB): output sample ``i`` sits at
  input position ``u = i/s + (1 - 1/s)/2`` for scale ``s``.
* **Antialiasing** when downscaling (s < 1): the kernel is stretched to ``s·k(s·x)``, so
  its support widens from 4 to 4/s input pixels.
* **Weights** of each output sample are normalised to sum to one.
* **Borders**: indices outside the image are mirrored *symmetrically* (``[1..n, n..1]``,
  the edge pixel repeated), as MATLAB does; weights are not truncated.
* **Output size**: ``ceil(in · s)`` per axis when a scale is given (computed with a 1e-9
  tolerance so that 9 × (1/3) gives 3, not 4); with an explicit size the per-axis scale
  is ``out / in``.

Why not ``torch.nn.functional.interpolate`` or kornia (which calls it)? Without
antialiasing torch's bicubic uses a = -0.75 (the OpenCV choice) and aliases when
downscaling; with ``antialias=True`` it uses a = -0.5 but, like Pillow, truncates and
renormalises the kernel at the borders instead of mirroring, so border pixels differ from
MATLAB's. Pillow's ``BICUBIC`` matches this module in the interior (tested).

The filter is separable and linear: for each axis a dense (out, in) weight matrix is built
once per ``(in_size, out_size, scale)`` (LRU-cached, float64) and applied with a matrix
product, so the operation is differentiable and runs on any device.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def output_size(in_size: int, scale: float) -> int:
    """MATLAB's ``ceil(in · scale)``, robust to float error in ``scale`` (e.g. 1/3)."""
    return max(1, math.ceil(in_size * scale - 1e-9))


@lru_cache(maxsize=64)
def _weights_np(in_size: int, out_size: int, scale: float, antialias: bool) -> np.ndarray:
    """Dense (out_size, in_size) float64 matrix of one axis' resampling weights."""
    width = 4.0
    if scale < 1 and antialias:
        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * d)
        width = width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_size + 1, dtype=np.float64)  # 1-based output centres
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # their positions in input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_size]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric padding: position p maps through [1..n, n..1] repeated (MATLAB's ``aux``).
    period = 2 * in_size
    m = np.mod(idx - 1, period).astype(np.int64)
    src = np.where(m < in_size, m, period - 1 - m)  # 0-based input index
    mat = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.repeat(np.arange(out_size), taps)
    np.add.at(mat, (rows, src.reshape(-1)), w.reshape(-1))  # mirrored taps may coincide
    return mat


@lru_cache(maxsize=64)
def _weights_torch(in_size: int, out_size: int, scale: float, antialias: bool,
                   device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(_weights_np(in_size, out_size, scale, antialias)).to(device=device, dtype=dtype)


def resize_weights(in_size: int, out_size: int, scale: float | None = None, antialias: bool = True) -> np.ndarray:
    """The (out_size, in_size) weight matrix of one axis (rows sum to 1); for inspection/tests."""
    s = float(scale) if scale is not None else out_size / in_size
    return _weights_np(int(in_size), int(out_size), s, bool(antialias)).copy()


def _plan(h: int, w: int, scale: float | tuple[float, float] | None,
          size: tuple[int, int] | None) -> tuple[int, int, float, float]:
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale or size")
    if size is not None:
        oh, ow = int(size[0]), int(size[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"imresize: size must be positive, got {size}")
        return oh, ow, oh / h, ow / w
    sh, sw = (scale, scale) if isinstance(scale, (int, float)) else scale
    sh, sw = float(sh), float(sw)
    if sh <= 0 or sw <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    return output_size(h, sh), output_size(w, sw), sh, sw


def _resize_tensor(x: Tensor, oh: int, ow: int, sh: float, sw: float, antialias: bool) -> Tensor:
    """x: (..., H, W) floating -> (..., oh, ow)."""
    h, w = x.shape[-2:]
    if (oh, ow) == (h, w) and sh == 1.0 and sw == 1.0:
        return x.clone()
    # Contract the axis with the larger reduction first: fewer operations in the second pass.
    wh = _weights_torch(h, oh, sh, antialias, x.device, x.dtype)  # (oh, H)
    ww = _weights_torch(w, ow, sw, antialias, x.device, x.dtype)  # (ow, W)
    if sh <= sw:
        return torch.matmul(torch.matmul(wh, x), ww.t())
    return torch.matmul(wh, torch.matmul(x, ww.t()))


def imresize(x: Any, scale: float | tuple[float, float] | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> Any:
    """MATLAB ``imresize(x, scale, 'bicubic')`` on a tensor or numpy image.

    Args:
        x: torch (N, C, H, W), (C, H, W) or (H, W) floating tensor (any range; no clamping:
            bicubic overshoots slightly, clamp yourself if you need [0, 1]);
            or numpy (H, W) / (H, W, C): float arrays stay float (no clamping), ``uint8``
            arrays are rounded and clipped back to ``uint8`` as MATLAB does.
        scale: factor (or (h, w) factors); output size ``ceil(in · scale)``.
        size: explicit output (height, width) instead of ``scale``.
        antialias: widen the kernel when downscaling (MATLAB's default ``true``).

    Returns:
        The same kind of object with the spatial size changed.
    """
    if isinstance(x, Tensor):
        if x.dim() < 2:
            raise ValueError(f"imresize: expected (..., H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"imresize: expected a floating tensor, got {x.dtype}")
        oh, ow, sh, sw = _plan(x.shape[-2], x.shape[-1], scale, size)
        # Half-precision matmuls lose too much for metrics: compute in float32 at least.
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        return _resize_tensor(work, oh, ow, sh, sw, antialias).to(x.dtype)
    a = np.asarray(x)
    if a.ndim not in (2, 3):
        raise ValueError(f"imresize: expected a numpy (H, W) or (H, W, C) image, got shape {a.shape}")
    oh, ow, sh, sw = _plan(a.shape[0], a.shape[1], scale, size)
    is_u8 = a.dtype == np.uint8
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64 if a.dtype == np.float64 else np.float32))
    t = t.permute(2, 0, 1) if a.ndim == 3 else t
    out = _resize_tensor(t, oh, ow, sh, sw, antialias)
    out = out.permute(1, 2, 0) if a.ndim == 3 else out
    res = out.numpy()
    if is_u8:
        return np.clip(np.rint(res), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(res.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32))
