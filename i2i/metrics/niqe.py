"""NIQE: the "completely blind" natural-image quality evaluator (no reference image needed).

Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE Signal
Processing Letters 20(3), 2013. Lower is more natural. Computed here as the authors' MATLAB release
(``computequality.m``) does, which is also what SR papers report through BasicSR's ``calculate_niqe``:

1. **Luma.** 8-bit quantise (:func:`i2i.metrics.image.quantize`), optionally crop ``crop_border``,
   take the BT.601 studio-swing Y (:func:`i2i.metrics.image.rgb_to_y`, [16, 235]) and round it to
   integers (MATLAB's ``rgb2ycbcr`` on uint8). The image is cropped at the bottom/right to whole
   96×96 patches.
2. **MSCN coefficients** (paper eq. 1): with a 7×7 Gaussian window w, σ = 7/6, normalised to sum 1
   (``fspecial('gaussian', 7, 7/6)``) and replicate borders (``imfilter(..., 'replicate')``):
   μ = w * I, σ = sqrt(|w * I² − μ²|), Î = (I − μ) / (σ + 1).
3. **18 features per patch and scale** (eqs. 2–7). An asymmetric generalized Gaussian (AGGD) is fitted
   by moment matching (Lasmar et al. 2009, as the release's ``estimateaggdparam.m``): with σ_l, σ_r the
   RMS of the negative / positive samples, γ̂ = σ_l/σ_r, r̂ = E|x|² / E[x²] and
   R̂ = r̂ (γ̂³ + 1)(γ̂ + 1) / (γ̂² + 1)², the shape α is the point of the grid 0.2:0.001:10 that minimises
   (ρ(α) − R̂)², ρ(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)); β_l,r = σ_l,r · sqrt(Γ(1/α)/Γ(3/α)).
   Features: (α, (β_l + β_r)/2) of Î on the patch, then for each of the four neighbour products
   Î(i, j)·Î(i + dy, j + dx) — horizontal, vertical and both diagonals, shifted circularly *within
   the patch* (``circshift`` in ``blkproc``) — (α, η, β_l, β_r) with η = (β_r − β_l) Γ(2/α)/Γ(1/α).
4. **Two scales**: the same on the image halved by MATLAB's bicubic ``imresize(I, 0.5)``
   (antialiased; :func:`i2i.data.resize.imresize`), with 48×48 patches at the same places: 36
   features per patch.
5. **Distance** (eq. 10): ν₁, Σ₁ the pristine model; ν₂ the mean of the image's patch features
   (``nanmean``), Σ₂ their sample covariance over the patches without NaN (``nancov``);
   NIQE = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)) with the Moore–Penrose pseudo-inverse.

The pristine model (ν₁, Σ₁) is the authors' published one, ``modelparameters.mat`` of the NIQE release
(125 pristine images, 96×96 patches, sharpness threshold 0.75), stored with the release's copyright
notice in ``niqe_pristine.json`` next to this file (see its ``source``). A patch whose MSCN values have
no negative or no positive sample (a flat patch) gives NaN features, which drop out of Σ₂ as in the
release. At least two patches are needed for Σ₂: images smaller than 192×96 (after cropping) are
refused.

Checked against BasicSR 1.4.2's ``calculate_niqe`` on scikit-image photos (``tests/test_metrics_niqe.py``).
Everything runs in float64 on the input's device (float32 on MPS, which has no float64).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MetricError
from .image import _work_dtype, quantize, rgb_to_y

__all__ = ["PATCH", "aggd_fit", "gaussian_window", "mscn", "niqe", "niqe_features", "niqe_of_luma", "pristine_model"]

PATCH = 96  # the release's block size (modelparameters.mat was fitted on 96×96 patches)
PARAMS_FILE = Path(__file__).with_name("niqe_pristine.json")
# (dy, dx) of the four neighbour products: horizontal, vertical, main and secondary diagonal
# (the release's circshift offsets [0 1; 1 0; 1 1; -1 1])
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@lru_cache(maxsize=1)
def _alpha_grid() -> tuple[Tensor, Tensor]:
    """The release's shape grid 0.2:0.001:10 (9801 values) and ρ(α) = Γ(2/α)²/(Γ(1/α)Γ(3/α)) on it, float64."""
    alpha = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64)
    rho = torch.exp(2 * torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha))
    return alpha, rho


def aggd_fit(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Moment-matching fit of an asymmetric generalized Gaussian to each row of ``x``.

    Args:
        x: (..., n) samples (float64 recommended).
    Returns:
        (alpha, beta_l, beta_r), each of shape (...): the shape α ∈ [0.2, 10] (on the 0.001 grid)
        and the left/right scales. For Gaussian samples of standard deviation s, α ≈ 2 and
        β_l ≈ β_r ≈ s·√2; for Laplace samples α ≈ 1. A row without negative (positive) samples
        has β_l (β_r) NaN and α = 0.2, as in the release.
    """
    alpha_grid, rho = _alpha_grid()
    alpha_grid, rho = alpha_grid.to(x.device, x.dtype), rho.to(x.device, x.dtype)
    sq = x * x
    neg, pos = x < 0, x > 0
    left = torch.sqrt((sq * neg).sum(-1) / neg.sum(-1))  # 0/0 = NaN where there is no negative sample
    right = torch.sqrt((sq * pos).sum(-1) / pos.sum(-1))
    g = left / right
    r_hat = x.abs().mean(-1) ** 2 / sq.mean(-1)
    r_norm = r_hat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    # the first minimum of (ρ − R̂)² on the grid, in chunks of rows (a row costs 9801 values); NaN -> the first point
    flat = r_norm.reshape(-1)
    idx = torch.cat([torch.nan_to_num((rho - c.unsqueeze(-1)) ** 2, nan=math.inf).argmin(-1) for c in flat.split(1024)])
    idx = idx.reshape(r_norm.shape)
    alpha = alpha_grid[idx]
    scale = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * scale, right * scale


def gaussian_window(size: int = 7, sigma: float = 7 / 6, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> Tensor:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: (size, size), sums to 1."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()


def mscn(y: Tensor) -> Tensor:
    """Mean-subtracted contrast-normalised coefficients (paper eq. 1) of (H, W) luma in [0, 255] -> (H, W)."""
    w = gaussian_window(dtype=y.dtype, device=y.device)[None, None]
    pad = w.shape[-1] // 2

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.pad(t[None, None], (pad, pad, pad, pad), mode="replicate"), w)[0, 0]

    mu = blur(y)
    sigma = torch.sqrt((blur(y * y) - mu * mu).abs())
    return (y - mu) / (sigma + 1)


def _patch_features(m: Tensor, p: int) -> Tensor:
    """(H, W) MSCN map, cut into p×p patches in row-major order -> (P, 18) features."""
    patches = m.unfold(0, p, p).unfold(1, p, p).reshape(-1, p, p)  # (P, p, p)
    alpha, bl, br = aggd_fit(patches.flatten(1))
    cols = [alpha, (bl + br) / 2]
    for dy, dx in _SHIFTS:
        prod = patches * torch.roll(patches, shifts=(dy, dx), dims=(1, 2))  # circular within each patch
        a, l, r = aggd_fit(prod.flatten(1))
        eta = (r - l) * torch.exp(torch.lgamma(2 / a) - torch.lgamma(1 / a))
        cols += [a, eta, l, r]
    return torch.stack(cols, 1)


def niqe_features(y: Tensor, patch: int = PATCH) -> Tensor:
    """The 36 features of every ``patch``×``patch`` patch of one luma image.

    Args:
        y: (H, W) luma with values in [0, 255] (already rounded for the release's protocol),
            at least ``patch`` on each side; cropped at the bottom/right to whole patches.
    Returns:
        (P, 36) features, P = ⌊H/patch⌋·⌊W/patch⌋ (row-major): 18 at full scale, 18 at half scale.
    """
    from ..data.resize import imresize

    if y.dim() != 2:
        raise MetricError(f"niqe_features expects one (H, W) luma image, got shape {tuple(y.shape)}")
    if patch % 2:
        raise MetricError(f"the NIQE patch side must be even (it is halved at the second scale), got {patch}")
    h, w = y.shape[0] // patch * patch, y.shape[1] // patch * patch
    if h == 0 or w == 0:
        raise MetricError(f"NIQE needs an image of at least {patch}×{patch} pixels, got {y.shape[1]}×{y.shape[0]}")
    y = y[:h, :w]
    full = _patch_features(mscn(y), patch)
    half = _patch_features(mscn(imresize(y, 0.5)), patch // 2)  # MATLAB bicubic, antialiased, unclamped
    return torch.cat([full, half], 1)


@lru_cache(maxsize=1)
def _pristine_cpu() -> tuple[Tensor, Tensor]:
    try:
        data = json.loads(PARAMS_FILE.read_text())
        mu = torch.tensor(data["mu"], dtype=torch.float64)
        cov = torch.tensor(data["cov"], dtype=torch.float64)
    except (OSError, ValueError, KeyError) as e:
        raise MetricError(f"{PARAMS_FILE}: cannot read the NIQE pristine model ({e})") from None
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise MetricError(f"{PARAMS_FILE}: expected mu of 36 values and a 36×36 cov, got {tuple(mu.shape)} and "
                          f"{tuple(cov.shape)}")
    return mu, cov


def pristine_model(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """The published pristine model: mean (36,) and covariance (36, 36) (``modelparameters.mat``)."""
    mu, cov = _pristine_cpu()
    return mu.to(device, dtype), cov.to(device, dtype)


def niqe_of_luma(y: Tensor) -> Tensor:
    """NIQE of one (H, W) luma image with values in [0, 255] (used as given: round it first for the
    release's protocol). Returns a 0-d tensor (lower = more natural)."""
    feats = niqe_features(y)
    complete = feats[~feats.isnan().any(1)]
    if complete.shape[0] < 2:
        raise MetricError(f"NIQE needs at least two {PATCH}×{PATCH} patches with texture (an image of at least "
                          f"{2 * PATCH}×{PATCH}), got {complete.shape[0]} from a {y.shape[1]}×{y.shape[0]} image")
    mu_d = feats.nanmean(0)
    cov_d = torch.cov(complete.t())
    mu_p, cov_p = pristine_model(y.device, y.dtype)
    d = mu_p - mu_d
    inv = torch.linalg.pinv((cov_p + cov_d) / 2, rtol=1e-15)  # numpy's and MATLAB-like cut-off
    return torch.sqrt(d @ inv @ d)


@torch.no_grad()
def niqe(images: Tensor, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """NIQE per image, as the NIQE release and BasicSR's ``calculate_niqe(..., convert_to='y')``.

    Args:
        images: (N, C, H, W) or (C, H, W), float in [0, 1] or uint8, C = 3 (RGB) or 1 (luma/grey).
        crop_border: pixels removed from every side first (the SR scale, as for PSNR).
        y_channel: score the BT.601 luma Y of RGB images (SR convention); False needs C = 1.
    Returns:
        (N,) float64 tensor (float32 on MPS); lower = closer to the pristine model.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f"niqe expects (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise MetricError(f"crop_border must be a non-negative int, got {crop_border!r}")
    x = quantize(images)
    if crop_border:
        if 2 * crop_border >= min(x.shape[-2:]):
            raise MetricError(f"crop_border={crop_border} leaves nothing of a {x.shape[-2]}×{x.shape[-1]} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    if x.shape[1] == 3:
        if not y_channel:
            raise MetricError("NIQE scores one channel: use y_channel=True for RGB images, or pass (N, 1, H, W)")
        x = torch.round(rgb_to_y(x))  # MATLAB rgb2ycbcr on uint8 rounds; BasicSR rounds too
    x = x.to(_work_dtype(x.device))
    return torch.stack([niqe_of_luma(img[0]) for img in x])
