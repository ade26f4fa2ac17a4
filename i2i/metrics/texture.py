"""Texture realism without a learned network: the Fréchet distance between dense SIFT statistics.

FID (Heusel et al. 2017) compares Inception-v3 features of real and generated images. Those
weights are a download, which i2i never makes at run time, and Inception was trained on
ImageNet objects, not on the 128-px photo crops of a CPU-sized pix2pix run. What the pix2pix
claim (Isola et al. 2017, Fig. 4) is about, sharp and realistic local texture versus blur,
is what a gradient-orientation histogram describes, so this module uses SIFT descriptors
(Lowe 2004; ``kornia.feature.SIFTDescriptor``: no learned weights, 128 numbers per patch =
4×4 cells × 8 orientations, RootSIFT-normalised) on a dense grid of grey-level patches, and
the same Fréchet distance as FID between the two sets' Gaussian fits:

    FD_SIFT = ‖μ_f − μ_r‖² + Tr(Σ_f + Σ_r − 2(Σ_f Σ_r)^½)        (i2i.metrics.generation)

0 for identical statistics; larger = the generated patches' texture statistics differ more
from the real photos'. Blur moves gradient energy out of fine cells and lowers the
descriptor's contrast, which this picks up; so does a repeated artefact pattern.

The statistics are carried as per-image *moments* (patch count, Σf, Σffᵀ), which add up
across images and processes (``gather_for_metrics`` then a sum), so the distance of a whole
evaluation set is exact however it was sharded.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import MetricError
from .generation import frechet_distance

__all__ = [
    "DIM",
    "PATCH",
    "STRIDE",
    "frechet_from_moments",
    "sift_features",
    "texture_frechet_distance",
    "texture_moments",
]

PATCH, STRIDE, DIM = 32, 8, 128
_DESCRIPTORS: dict[tuple[int, str], torch.nn.Module] = {}


def _descriptor(patch: int, device: torch.device) -> torch.nn.Module:
    key = (patch, str(device))
    if key not in _DESCRIPTORS:
        from kornia.feature import SIFTDescriptor

        _DESCRIPTORS[key] = SIFTDescriptor(patch, num_ang_bins=8, num_spatial_bins=4, rootsift=True).to(device).eval()
    return _DESCRIPTORS[key]


@torch.no_grad()
def sift_features(images: Tensor, patch: int = PATCH, stride: int = STRIDE) -> Tensor:
    """(N, C, H, W) in [0, 1] (C = 1 or 3) -> (N, P, 128) SIFT descriptors of the
    patch × patch grey-level windows on a grid of step ``stride`` (P per image)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f"sift_features expects (N, 1 or 3, H, W) images, got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if h < patch or w < patch:
        raise MetricError(f"sift_features: images of {h}x{w} are smaller than the {patch}-px patch")
    x = images.float().clamp(0, 1)
    if c == 3:
        from kornia.color import rgb_to_grayscale

        x = rgb_to_grayscale(x)
    windows = x.unfold(2, patch, stride).unfold(3, patch, stride)  # (N, 1, gh, gw, patch, patch)
    windows = windows.reshape(n, -1, patch, patch)
    p = windows.shape[1]
    desc = _descriptor(patch, x.device)(windows.reshape(n * p, 1, patch, patch))
    return desc.reshape(n, p, DIM)


def texture_moments(images: Tensor, patch: int = PATCH, stride: int = STRIDE) -> Tensor:
    """Per image, (N, 1 + D + D²) float64: [patch count, Σf, Σffᵀ (flattened)] of its
    descriptors. Rows add: the sum over images (and processes) describes the whole set."""
    f = sift_features(images, patch, stride).double()
    n, p, d = f.shape
    count = torch.full((n, 1), float(p), dtype=torch.float64, device=f.device)
    return torch.cat([count, f.sum(1), torch.einsum("npi,npj->nij", f, f).reshape(n, d * d)], 1)


def _gaussian(moments: Tensor) -> tuple[np.ndarray, np.ndarray]:
    m = moments.double().cpu().reshape(-1, moments.shape[-1]).sum(0).numpy()
    d = round((-1 + (1 + 4 * (m.size - 1)) ** 0.5) / 2)
    if 1 + d + d * d != m.size:
        raise MetricError(f"texture moments of length {m.size} are not 1 + D + D² for any D")
    n = m[0]
    if n < 2:
        raise MetricError(f"the Fréchet distance needs at least 2 patches, got {n:g}")
    mu = m[1:1 + d] / n
    second = m[1 + d:].reshape(d, d)
    cov = (second - n * np.outer(mu, mu)) / (n - 1)  # unbiased, as numpy.cov and FID's code
    return mu, (cov + cov.T) / 2


def frechet_from_moments(fake: Tensor, real: Tensor) -> float:
    """FD_SIFT of two sets given as summed (or per-image, summed here) :func:`texture_moments`."""
    return frechet_distance(*_gaussian(fake), *_gaussian(real))


def texture_frechet_distance(fake: Tensor, real: Tensor, patch: int = PATCH, stride: int = STRIDE) -> float:
    """FD_SIFT between two batches of images, (N, C, H, W) in [0, 1]; sizes may differ."""
    return frechet_from_moments(texture_moments(fake, patch, stride), texture_moments(real, patch, stride))
