"""Sketches from photos: black lines on a white background, for sketch -> photo training.

* :func:`canny_sketch`: Canny, "A Computational Approach to Edge Detection", IEEE PAMI
  1986 (Gaussian smoothing, gradient, non-maximum suppression, hysteresis thresholds),
  via ``skimage.feature.canny``. pix2pix's edges2shoes/edges2handbags were made with HED
  (Xie & Tu 2015) plus post-processing; HED needs network weights, Canny needs none.
* :func:`xdog_sketch`: the thresholded eXtended Difference-of-Gaussians of Winnemöller,
  Kyprianidis & Olsen, "XDoG: An eXtended difference-of-Gaussians compendium including
  advanced image stylization", Computers & Graphics 36(6), 2012, eq. 5 (sharpened image)
  and eq. 6 (soft threshold)::

      S(x) = (1 + p) · G_σ(x) - p · G_{kσ}(x)
      T(u) = 1                       if u >= ε
             1 + tanh(φ · (u - ε))   otherwise

  on the grayscale image in [0, 1]. Large φ makes the threshold hard (binary lines); ε > 0
  also fills regions darker than ε, which reads as pen shading (defaults: lines only).

Why scikit-image's Canny rather than ``kornia.filters.canny``: the data pipeline works on
numpy HWC uint8 arrays in DataLoader workers (CPU) and computes each sketch once per photo
(the dataset caches it), so a GPU/batched implementation buys nothing, while skimage's is
the reference one (8-connected hysteresis run to completion, thresholds in gradient units
or quantiles) and avoids a tensor round trip. XDoG is two Gaussian blurs, done with
``scipy.ndimage`` (a scikit-image dependency).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import canny

__all__ = ["to_gray01", "canny_sketch", "xdog_sketch"]


def to_gray01(img: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 [0, 255] / float [0, 1] -> (H, W) float64 luma in [0, 1] (BT.601)."""
    a = np.asarray(img)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[..., 0]
        elif a.shape[2] in (3, 4):
            a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
        else:
            raise ValueError(f"expected 1, 3 or 4 channels, got an image of shape {a.shape}")
    elif a.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    return np.clip(a, 0.0, 1.0)


def _as_sketch(white: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) float, 1 = white paper -> (H, W, channels) uint8."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    out = np.round(np.clip(white, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(out[..., None], channels, axis=2)


def canny_sketch(img: np.ndarray, low: float = 0.05, high: float = 0.15, sigma: float = 2.0,
                 channels: int = 1) -> np.ndarray:
    """Canny edges drawn as 1-pixel black lines on white.

    Args:
        img: (H, W) or (H, W, C) photo, uint8 in [0, 255] or float in [0, 1].
        low, high: hysteresis thresholds on the Sobel gradient magnitude of the smoothed
            grayscale image in [0, 1] (an ideal 0→1 step gives ~4 before smoothing; smoothing
            lowers it). Pixels above ``high`` seed edges, connected pixels above ``low`` extend them.
        sigma: Gaussian smoothing (pixels) before the gradient: larger = fewer, longer edges.
        channels: 1 or 3 output channels (equal values).

    Returns:
        (H, W, channels) uint8: 0 on edges, 255 elsewhere.
    """
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got low={low}, high={high}")
    edges = canny(to_gray01(img), sigma=sigma, low_threshold=low, high_threshold=high)
    return _as_sketch(1.0 - edges.astype(np.float64), channels)


def xdog_sketch(img: np.ndarray, sigma: float = 0.8, k: float = 1.6, p: float = 20.0, eps: float = 0.0,
                phi: float = 200.0, channels: int = 1) -> np.ndarray:
    """Thresholded XDoG (Winnemöller et al. 2012, eqs. 5-6): dark lines on white.

    Args:
        img: (H, W) or (H, W, C) photo, uint8 in [0, 255] or float in [0, 1].
        sigma: scale σ of the smaller Gaussian (line width grows with it).
        k: ratio of the two Gaussians' scales (1.6 approximates a Laplacian of Gaussian).
        p: sharpening strength: S = (1+p)·G_σ - p·G_kσ; larger = more (and fainter) lines.
        eps: threshold ε on S (gray in [0, 1]): S >= ε is white paper. At 0 only the dark
            side of edges (where the sharpening undershoots) is drawn; a positive ε also
            fills regions darker than ε with black (shading).
        phi: steepness φ of the soft threshold below ε; large = nearly binary.
        channels: 1 or 3 output channels (equal values).

    Returns:
        (H, W, channels) uint8 in [0, 255], near 0 on lines, 255 on paper.
    """
    if sigma <= 0 or k <= 1:
        raise ValueError(f"need sigma > 0 and k > 1, got sigma={sigma}, k={k}")
    gray = to_gray01(img)
    # mode="nearest": mirror-free borders would otherwise draw a frame around the image
    g1 = ndimage.gaussian_filter(gray, sigma, mode="nearest")
    g2 = ndimage.gaussian_filter(gray, k * sigma, mode="nearest")
    s = (1.0 + p) * g1 - p * g2
    white = np.where(s >= eps, 1.0, 1.0 + np.tanh(phi * (s - eps)))
    return _as_sketch(white, channels)
