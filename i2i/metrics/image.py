"""PSNR and SSIM as super-resolution papers report them.

The protocol (SRCNN, Dong et al. 2014; SRGAN, Ledig et al. 2017, §3.1; and BasicSR's
``calculate_psnr``/``calculate_ssim``) evaluates the images *as saved*:

1. quantise to 8 bits: ``round(x · 255)`` clamped to [0, 255] (uint8 input is used as is);
2. optionally crop ``crop_border`` pixels (usually the scale factor) from every side;
3. optionally keep only the luma Y of ITU-R BT.601 YCbCr ("studio swing", as MATLAB's
   ``rgb2ycbcr``): ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1],
   so Y ∈ [16, 235]. Y is kept as a float (BasicSR); MATLAB's ``rgb2ycbcr`` on uint8
   would round it, which moves PSNR by ~0.01 dB;
4. PSNR = 10 log10(255² / MSE), MSE over all channels and pixels of one image;
   SSIM (Wang et al., "Image Quality Assessment: From Error Visibility to Structural
   Similarity", 2004, eq. 13) with an 11×11 Gaussian window σ = 1.5, K1 = 0.01,
   K2 = 0.03, L = 255, population (co)variances, computed per channel and averaged.

SSIM matches ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)``: skimage
filters with ``scipy.ndimage.gaussian_filter`` (truncate 3.5 → radius 5 → 11 taps) in
reflect mode, then averages the SSIM map only over pixels at least 5 from the border,
i.e. where the window never touches the padding. A *valid* (unpadded) convolution
yields exactly that region, so no padding mode is needed here. Everything is computed
in float64 (float32 on devices without float64 support) so that results agree with
scikit-image to ~1e-10.

The cores are kornia's: ``kornia.metrics.ssim(..., window_size=11, max_val=255,
eps=0, padding="valid")`` is the SSIM map above (its 11-tap σ = 1.5 window equals scipy's)
and ``kornia.metrics.psnr`` the PSNR of one image. kornia is imported when a metric is
first computed, so importing this module does not need it. The luma stays ours:
``kornia.color.rgb_to_y`` is the full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
(JPEG's), not the studio-swing ``16 + (219/255) · luma`` that SR papers report.

Identical images have infinite PSNR (``inf``), as in scikit-image.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["quantize", "rgb_to_y", "psnr", "ssim", "ImageQuality"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # BT.601 studio-swing luma, for RGB in [0, 1]
_SSIM_WINDOW = 11  # 2 · int(3.5 · 1.5 + 0.5) + 1: scipy's truncate=3.5 at σ = 1.5 (kornia's fixed σ)
_L = 255.0


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def quantize(x: Tensor) -> Tensor:
    """Images as saved to 8-bit files, as float64 values in {0, ..., 255}.

    Args:
        x: float in [0, 1] (values outside are clamped after scaling) or uint8, any shape.
    Returns:
        tensor of the same shape, integral values in [0, 255].
    """
    dt = _work_dtype(x.device)
    if x.dtype == torch.uint8:
        return x.to(dt)
    if not x.is_floating_point():
        raise TypeError(f"expected a float image in [0, 1] or uint8, got dtype {x.dtype}")
    # scale in float64 so that the rounding of x·255 does not depend on the input precision
    return torch.round(x.to(dt) * 255.0).clamp_(0.0, 255.0)


def rgb_to_y(x: Tensor) -> Tensor:
    """BT.601 luma of RGB images with values in [0, 255]: (N, 3, H, W) -> (N, 1, H, W) in [16, 235]."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y expects (N, 3, H, W) RGB images, got shape {tuple(x.shape)}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 16.0 + (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0


def _prepare(pred: Tensor, target: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Quantise, crop and (optionally) take Y of both images: -> two (N, C', H', W') float tensors."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dim() == 3:  # a single (C, H, W) image
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(pred.shape)}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative int, got {crop_border!r}")
    h, w = pred.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}×{w} image")
    a, b = quantize(pred), quantize(target.to(pred.device))
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        if a.shape[1] == 3:
            a, b = rgb_to_y(a), rgb_to_y(b)
        elif a.shape[1] != 1:  # a single channel is taken to be luma already
            raise ValueError(f"y_channel=True needs RGB (3 channels) or grey (1) images, got {a.shape[1]} channels")
    return a, b


def psnr(pred: Tensor, target: Tensor, crop_border: int = 0, y_channel: bool = False) -> Tensor:
    """Peak signal-to-noise ratio per image, in dB, with peak 255 on 8-bit quantised images.

    Args:
        pred, target: (N, C, H, W) (or (C, H, W)) float in [0, 1] or uint8.
        crop_border: pixels removed from every side before comparing (the SR scale).
        y_channel: compare the BT.601 luma of RGB images instead of all channels.
    Returns:
        (N,) float64 tensor; ``inf`` where an image equals its target.
    """
    from kornia.metrics import psnr as kornia_psnr

    a, b = _prepare(pred, target, crop_border, y_channel)
    # kornia's PSNR pools the MSE over its whole input: one call per image
    return torch.stack([kornia_psnr(x, y, _L) for x, y in zip(a, b)])


def _ssim_per_image(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM over channels and valid pixels; a, b: (N, C, H, W) in [0, 255] -> (N,)."""
    from kornia.metrics import ssim as kornia_ssim

    h, w = a.shape[-2:]
    if min(h, w) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {_SSIM_WINDOW}×{_SSIM_WINDOW} pixels (after cropping), "
                         f"got {h}×{w}")
    # eps=0: no stabiliser beyond C1, C2 (as skimage); "valid": only pixels whose window
    # stays inside the image, the region skimage averages
    s = kornia_ssim(a, b, _SSIM_WINDOW, max_val=_L, eps=0.0, padding="valid")
    # every channel has the same number of valid pixels, so the overall mean equals
    # skimage's mean of per-channel means
    return s.flatten(1).mean(1)


def ssim(pred: Tensor, target: Tensor, crop_border: int = 0, y_channel: bool = False) -> Tensor:
    """Structural similarity per image on 8-bit quantised images (see the module header).

    Args:
        pred, target: (N, C, H, W) (or (C, H, W)) float in [0, 1] or uint8; at least
            11×11 after cropping.
        crop_border: pixels removed from every side before comparing (the SR scale).
        y_channel: compare the BT.601 luma of RGB images instead of all channels.
    Returns:
        (N,) float64 tensor with values in [-1, 1] (1 for identical images).
    """
    a, b = _prepare(pred, target, crop_border, y_channel)
    return _ssim_per_image(a, b)


class ImageQuality:
    """Accumulates per-image PSNR/SSIM over an evaluation set; correct under multi-process runs.

    Each ``update`` computes the per-image values of a batch as one (B, k) tensor and, if
    ``gather`` is given, passes it through ``gather`` *before* storing it. With
    Accelerate use ``gather=accelerator.gather_for_metrics``: it must be applied batch
    by batch (it drops the samples that the distributed sampler duplicated to pad the
    last batch), which is why gathering happens here and not in ``compute``. After
    gathering, every process holds every image's values, so ``compute`` needs no
    communication and returns the same numbers on every rank.

    Args:
        crop_border: pixels removed from every side (the SR scale factor).
        y_channel: also compute ``psnr_y``/``ssim_y`` on BT.601 luma (SR convention).
        gather: optional callable mapping a (B, k) tensor to the (B_total, k) tensor of
            all processes.

    Example::

        q = ImageQuality(crop_border=4, gather=accelerator.gather_for_metrics)
        for batch in loader:
            q.update(model(batch["lr"]).clamp(0, 1), batch["hr"])
        q.compute()  # {'psnr': ..., 'ssim': ..., 'psnr_y': ..., 'ssim_y': ...}
    """

    def __init__(self, crop_border: int = 0, y_channel: bool = True,
                 gather: Callable[[Tensor], Tensor] | None = None):
        self.crop_border = crop_border
        self.y_channel = y_channel
        self.gather = gather
        self.keys = ["psnr", "ssim"] + (["psnr_y", "ssim_y"] if y_channel else [])
        self._values: list[Tensor] = []

    def reset(self) -> None:
        self._values.clear()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: pred, target (N, C, H, W) float in [0, 1] or uint8."""
        pred, target = pred.detach(), target.detach()
        cols = [psnr(pred, target, self.crop_border), ssim(pred, target, self.crop_border)]
        if self.y_channel:
            cols += [psnr(pred, target, self.crop_border, True), ssim(pred, target, self.crop_border, True)]
        values = torch.stack(cols, dim=1)  # (N, k): one collective call per batch, not k
        if self.gather is not None:
            values = self.gather(values)
        self._values.append(values.to("cpu", torch.float64))

    @property
    def num_images(self) -> int:
        return sum(v.shape[0] for v in self._values)

    def per_image(self) -> dict[str, Tensor]:
        """Every image's values so far: ``{key: (num_images,) tensor}``."""
        allv = torch.cat(self._values) if self._values else torch.zeros(0, len(self.keys), dtype=torch.float64)
        return {k: allv[:, i] for i, k in enumerate(self.keys)}

    def compute(self) -> dict[str, float]:
        """Means over all images seen: ``{'psnr', 'ssim'[, 'psnr_y', 'ssim_y']}`` (nan if none)."""
        return {k: (v.mean().item() if v.numel() else float("nan")) for k, v in self.per_image().items()}
