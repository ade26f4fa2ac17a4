"""Real-ESRGAN's high-order degradation model, batched on tensors on any device.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021 (arXiv:2107.10833), §3 (eq. 1–4, Fig. 2), with the defaults of its
released ``options/train_realesrnet_x4plus.yml`` and ``realesrgan/data/realesrgan_dataset.py``
(every default below is cited from there; the field names are the peer's YAML keys, so a
Real-ESRGAN option block ports key for key)::

    HR (B, 3, H, W) in [0, 1]
      stage 1: blur k₁ ─ resize (up/down/keep, area/bilinear/bicubic) ─ noise (Gaussian | Poisson) ─ JPEG
      stage 2: blur k₂ (p 0.8) ─ resize ─ noise ─ ┬ (½) resize to H/s ─ sinc ─ JPEG
                                                  └ (½) JPEG ─ resize to H/s ─ sinc
      round to 8 bits
    LR (B, 3, H/s, W/s) in [0, 1], multiples of 1/255

Blur kernels (§3.1, eq. 2–3), one per image, odd size k ∈ {7, 9, …, 21}, zero-padded to 21×21:
isotropic / anisotropic Gaussian ``exp(-½ CᵀΣ⁻¹C)``, generalized Gaussian ``exp(-½ (CᵀΣ⁻¹C)^β)``
and plateau ``1 / (1 + (CᵀΣ⁻¹C)^β)``, Σ = R(θ) diag(σ₁², σ₂²) R(θ)ᵀ, each normalised to sum 1;
with probability ``sinc_prob`` instead the 2-D sinc (circular low-pass, §3.3, eq. 4)
``k(r) = ω_c J₁(ω_c r) / (2π r)`` (centre ω_c²/4π), normalised. C runs over the integer grid
centred on the kernel (the peer's ``mesh_grid``), σ₁ along the column axis rotated by θ.

Randomness (what is drawn per image and what per batch follows the peer's ``feed_data``):
per image — kernels, noise σ / Poisson scale, grey-noise flag, JPEG quality; per batch —
resize direction, factor and mode, noise type, whether the second blur runs, the order of the
final steps. Every draw comes from one CPU ``torch.Generator`` in a fixed order (the number of
draws does not depend on earlier outcomes), so a seed gives bit-identical output on one
device and a saved ``generator.get_state()`` resumes the stream exactly. Pixel noise is drawn
on the images' device from a generator seeded from that CPU stream: no host sync.

JPEG: ``kornia.enhance.jpeg_codec_differentiable`` (Reich et al. 2024), the same differentiable
codec construction (``round(x) + (x - round(x))³``, IJG quality scaling, 4:2:0) as the peer's
``DiffJPEG``; tests/test_data_degradations.py bounds its distance to Pillow's JPEG.

Deviation from the peer: ``filter2d`` pads by reflection like the peer, but where an image
is not larger than the kernel radius (the peer raises there) it pads by replication.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..typecheck import check_kwargs

__all__ = [
    "KERNEL_TYPES",
    "DegradationConfig",
    "add_gaussian_noise",
    "add_poisson_noise",
    "covariance",
    "degrade",
    "filter2d",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "jpeg",
    "mesh_grid",
    "plateau_kernel",
    "random_final_sinc",
    "random_kernels",
    "sinc_kernel",
    "usm_kernel",
    "usm_kernel_1d",
    "usm_sharpen",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class DegradationConfig:
    """Every parameter of the degradation; defaults = Real-ESRGAN's ``train_realesrnet_x4plus.yml``.

    Ranges are ``(lo, hi)`` for a uniform draw; probabilities of ``resize_prob`` are (up, down,
    keep). Kernel sizes are the odd numbers of ``kernel_size_range``; the largest is also the
    padded size of every kernel (the peer's ``blur_kernel_size: 21``).
    """

    scale: int = 4
    kernel_size_range: tuple[int, int] = (7, 21)
    # first stage kernels
    kernel_list: tuple[str, ...] = KERNEL_TYPES
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    # second stage kernels
    kernel_list2: tuple[str, ...] = KERNEL_TYPES
    kernel_prob2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    final_sinc_prob: float = 0.8
    # first stage
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)
    # second stage
    second_blur_prob: float = 0.8
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (30.0, 95.0)

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or self.scale < 1:
            raise ConfigError(f"must be an integer >= 1, got {self.scale!r}", "scale")
        lo, hi = self.kernel_size_range
        if lo % 2 == 0 or hi % 2 == 0 or not 1 <= lo <= hi:
            raise ConfigError(f"must be two odd sizes lo <= hi, got {self.kernel_size_range!r}", "kernel_size_range")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_prob") or f.name[:-1].endswith("_prob"):
                if isinstance(v, tuple):
                    if any(p < 0 for p in v) or not math.isclose(sum(v), 1.0, abs_tol=1e-6):
                        raise ConfigError(f"must be probabilities summing to 1, got {v!r}", f.name)
                elif not 0.0 <= v <= 1.0:
                    raise ConfigError(f"must be a probability in [0, 1], got {v!r}", f.name)
            elif ("range" in f.name or f.name.startswith("blur_sigma")) and (
                    len(v) != 2 or not all(math.isfinite(x) for x in v) or v[0] > v[1] or v[0] <= 0):
                raise ConfigError(f"must be (lo, hi) with 0 < lo <= hi, got {v!r}", f.name)
        for names, probs in (("kernel_list", "kernel_prob"), ("kernel_list2", "kernel_prob2")):
            kinds, p = getattr(self, names), getattr(self, probs)
            bad = [k for k in kinds if k not in KERNEL_TYPES]
            if bad:
                raise ConfigError(f"unknown kernel type {bad[0]!r}; choose from {', '.join(KERNEL_TYPES)}", names)
            if len(kinds) != len(p):
                raise ConfigError(f"needs one probability per kernel type in {names} ({len(kinds)}), got {len(p)}", probs)
        for name in ("jpeg_range", "jpeg_range2"):
            if getattr(self, name)[1] > 100:
                raise ConfigError(f"JPEG quality must be in (0, 100], got {getattr(self, name)!r}", name)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, key: str = "degradation") -> DegradationConfig:
        """From a YAML mapping (lists become tuples); unknown keys and wrong types: one-line ConfigError."""
        d = dict(d or {})
        check_kwargs(cls, d, key)
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        try:
            return cls(**d)
        except ConfigError as e:
            raise e.at(key) from None

    def to_dict(self) -> dict[str, Any]:
        """YAML-able: tuples as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def kernel_sizes(self) -> tuple[int, ...]:
        return tuple(range(self.kernel_size_range[0], self.kernel_size_range[1] + 1, 2))

    @property
    def pad_size(self) -> int:
        """Every kernel is zero-padded to pad_size × pad_size (21)."""
        return self.kernel_size_range[1]


# --- kernels: closed forms, batched ----------------------------------------------------------
def mesh_grid(size: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """(x, y) coordinates of a ``size``×``size`` kernel centred on 0: x varies along columns."""
    ax = torch.arange(size, dtype=dtype) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def covariance(sigma_x: Tensor, sigma_y: Tensor, theta: Tensor) -> Tensor:
    """Σ = R(θ) diag(σx², σy²) R(θ)ᵀ, (B,) -> (B, 2, 2); R = [[cos, -sin], [sin, cos]]."""
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    d = torch.diag_embed(torch.stack([sigma_x**2, sigma_y**2], -1))
    return rot @ d @ rot.transpose(-1, -2)


def _quadratic(size: int, sigma_x: Tensor, sigma_y: Tensor, theta: Tensor) -> Tensor:
    """CᵀΣ⁻¹C on the grid: (B,) -> (B, size, size)."""
    inv = torch.linalg.inv(covariance(sigma_x, sigma_y, theta))
    x, y = mesh_grid(size, inv.dtype)
    a, b, d = inv[:, 0, 0, None, None], inv[:, 0, 1, None, None], inv[:, 1, 1, None, None]
    return a * x * x + 2 * b * x * y + d * y * y


def _normalise(k: Tensor) -> Tensor:
    return k / k.sum(dim=(-2, -1), keepdim=True)


def gaussian_kernel(size: int, sigma_x: Tensor, sigma_y: Tensor, theta: Tensor) -> Tensor:
    """Anisotropic Gaussian exp(-½ CᵀΣ⁻¹C), normalised (eq. 2): (B,) params -> (B, size, size).
    Isotropic: ``sigma_y = sigma_x`` (θ is then irrelevant)."""
    return _normalise(torch.exp(-0.5 * _quadratic(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: Tensor, sigma_y: Tensor, theta: Tensor, beta: Tensor) -> Tensor:
    """Generalized Gaussian exp(-½ (CᵀΣ⁻¹C)^β), normalised (eq. 3): (B,) params -> (B, size, size)."""
    q = _quadratic(size, sigma_x, sigma_y, theta)
    return _normalise(torch.exp(-0.5 * q.pow(beta[:, None, None])))


def plateau_kernel(size: int, sigma_x: Tensor, sigma_y: Tensor, theta: Tensor, beta: Tensor) -> Tensor:
    """Plateau-shaped 1 / (1 + (CᵀΣ⁻¹C)^β), normalised (§3.1): (B,) params -> (B, size, size)."""
    q = _quadratic(size, sigma_x, sigma_y, theta)
    return _normalise(1.0 / (q.pow(beta[:, None, None]) + 1.0))


def sinc_kernel(size: int, omega_c: Tensor) -> Tensor:
    """2-D sinc (ideal circular low-pass, eq. 4): ω_c J₁(ω_c r)/(2π r), centre ω_c²/(4π), normalised.

    (B,) cutoffs in (0, π] -> (B, size, size).
    """
    x, y = mesh_grid(size, omega_c.dtype)
    r = torch.sqrt(x * x + y * y)
    w = omega_c[:, None, None]
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    k = w * torch.special.bessel_j1(w * safe_r) / (2 * math.pi * safe_r)
    k = torch.where(r > 0, k, w**2 / (4 * math.pi))
    return _normalise(k)


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _support_mask(sizes: Tensor, pad: int) -> Tensor:
    """(B,) odd sizes -> (B, pad, pad) bool: the centred size×size window (zero padding to ``pad``)."""
    x, y = mesh_grid(pad)
    half = (sizes.to(torch.float64) // 2)[:, None, None]
    return (x.abs() <= half) & (y.abs() <= half)


def random_kernels(batch: int, gen: torch.Generator, cfg: DegradationConfig, stage: int = 1) -> Tensor:
    """One random blur kernel per image (Real-ESRGAN's ``_getitem`` kernel draw): (batch, 21, 21) float64.

    Size uniform over the odd sizes; with probability ``sinc_prob`` a sinc with ω_c ~ U[π/3, π]
    (size < 13) or U[π/5, π]; else a type from ``kernel_list`` with ``kernel_prob``: σx, σy ~
    ``blur_sigma`` (σy = σx and θ = 0 for the iso types), θ ~ U[-π, π], β_g ~ U[β₀, 1] or U[1, β₁]
    with probability ½ each, β_p ~ ``betap_range``. A size-k kernel is computed on its k×k grid
    and zero-padded to 21×21. The number of draws is fixed per batch.
    """
    s = "" if stage == 1 else "2"
    kinds_list = getattr(cfg, "kernel_list" + s)
    probs = torch.tensor(getattr(cfg, "kernel_prob" + s), dtype=torch.float64)
    sigma = getattr(cfg, "blur_sigma" + s)
    bg, bp = getattr(cfg, "betag_range" + s), getattr(cfg, "betap_range" + s)
    pad = cfg.pad_size
    sizes_all = torch.tensor(cfg.kernel_sizes)
    sizes = sizes_all[torch.randint(len(sizes_all), (batch,), generator=gen)]
    is_sinc = torch.rand(batch, generator=gen, dtype=torch.float64) < getattr(cfg, "sinc_prob" + s)
    u = torch.rand(batch, generator=gen, dtype=torch.float64)
    omega = torch.where(sizes < 13, math.pi / 3 + u * (math.pi - math.pi / 3), math.pi / 5 + u * (math.pi - math.pi / 5))
    kind_index = torch.multinomial(probs, batch, replacement=True, generator=gen)
    kinds = [KERNEL_TYPES.index(kinds_list[int(i)]) for i in kind_index]
    kinds_t = torch.tensor(kinds)
    sx = _uniform(gen, batch, *sigma)
    sy = _uniform(gen, batch, *sigma)
    theta = _uniform(gen, batch, -math.pi, math.pi)
    below = torch.rand(batch, generator=gen, dtype=torch.float64) < 0.5
    beta_g = torch.where(below, _uniform(gen, batch, bg[0], 1.0), _uniform(gen, batch, 1.0, bg[1]))
    beta_p = _uniform(gen, batch, *bp)
    iso = (kinds_t % 2) == 0  # iso, generalized_iso, plateau_iso are the even indices of KERNEL_TYPES
    sy = torch.where(iso, sx, sy)
    theta = torch.where(iso, torch.zeros_like(theta), theta)

    mask = _support_mask(sizes, pad)
    family = (kinds_t // 2)[:, None, None]  # 0 Gaussian, 1 generalized, 2 plateau
    q = _quadratic(pad, sx, sy, theta)
    beta = torch.where(family == 1, beta_g[:, None, None], beta_p[:, None, None])
    k = torch.where(family == 0, torch.exp(-0.5 * q),
                    torch.where(family == 1, torch.exp(-0.5 * q.pow(beta)), 1.0 / (q.pow(beta) + 1.0)))
    k = _normalise(torch.where(mask, k, torch.zeros_like(k)))
    # the sinc of a size-k kernel: the formula on the k×k grid, centred, zero-padded
    sinc = _normalise(torch.where(mask, sinc_kernel(pad, omega), torch.zeros_like(k)))
    return torch.where(is_sinc[:, None, None], sinc, k)


def random_final_sinc(batch: int, gen: torch.Generator, cfg: DegradationConfig) -> Tensor:
    """The final sinc (p ``final_sinc_prob``, ω_c ~ U[π/3, π], random odd size) or the identity pulse: (batch, 21, 21)."""
    pad = cfg.pad_size
    sizes_all = torch.tensor(cfg.kernel_sizes)
    sizes = sizes_all[torch.randint(len(sizes_all), (batch,), generator=gen)]
    use = torch.rand(batch, generator=gen, dtype=torch.float64) < cfg.final_sinc_prob
    omega = _uniform(gen, batch, math.pi / 3, math.pi)
    mask = _support_mask(sizes, pad)
    sinc = _normalise(torch.where(mask, sinc_kernel(pad, omega), torch.zeros(batch, pad, pad, dtype=torch.float64)))
    pulse = torch.zeros(pad, pad, dtype=torch.float64)
    pulse[pad // 2, pad // 2] = 1.0
    return torch.where(use[:, None, None], sinc, pulse)


# --- image operations ---------------------------------------------------------------------------
def filter2d(img: Tensor, kernel: Tensor) -> Tensor:
    """Correlate each image with its own kernel (the peer's ``filter2D``), reflect padding.

    img (B, C, H, W); kernel (B, k, k) or (1, k, k) / (k, k), k odd -> (B, C, H, W). Replicate
    padding where H or W <= k//2 (reflection needs more pixels than the pad).
    """
    if kernel.dim() == 2:
        kernel = kernel[None]
    b, c, h, w = img.shape
    k = kernel.shape[-1]
    if k % 2 == 0 or kernel.shape[-2] != k:
        raise ValueError(f"filter2d needs odd square kernels, got {tuple(kernel.shape)}")
    p = k // 2
    mode = "reflect" if p < h and p < w else "replicate"
    x = F.pad(img, (p, p, p, p), mode=mode)
    kernel = kernel.to(img.dtype)
    if kernel.shape[0] == 1:
        return F.conv2d(x.reshape(b * c, 1, h + 2 * p, w + 2 * p), kernel[:, None]).view(b, c, h, w)
    weight = kernel[:, None].repeat_interleave(c, dim=0)  # (B·C, 1, k, k)
    return F.conv2d(x.reshape(1, b * c, h + 2 * p, w + 2 * p), weight, groups=b * c).view(b, c, h, w)


def add_gaussian_noise(img: Tensor, sigma: Tensor, gray: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """img + n, n ~ N(0, σ²) per pixel and channel, or one grey N(0, σ²) shared by the channels; clipped to [0, 1].

    img (B, C, H, W) in [0, 1]; sigma (B,) in [0, 1] units (the peer's σ/255); gray (B,) bool, on the
    CPU (as :func:`degrade` draws it): a field is drawn only when some image needs it, without a device sync.
    """
    shape = img.shape
    gray_c = gray.cpu()
    noise = torch.randn(shape, generator=gen, device=img.device, dtype=img.dtype) if not gray_c.all() else None
    noise_gray = None
    if gray_c.any():
        noise_gray = torch.randn((shape[0], 1, *shape[2:]), generator=gen, device=img.device, dtype=img.dtype)
        noise_gray = noise_gray.expand(shape)
    if noise is None or noise_gray is None:
        n = noise if noise is not None else noise_gray
    else:
        n = torch.where(gray.to(img.device, non_blocking=True).view(-1, 1, 1, 1), noise_gray, noise)
    return (img + n * sigma.to(img.device, img.dtype, non_blocking=True).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def _distinct_levels(x8: Tensor) -> Tensor:
    """Number of distinct 8-bit values per image of x8 (B, ...) in {0, 1/255, …, 1}: (B,), on the device, no sync."""
    levels = (x8 * 255).round().long().flatten(1)
    hist = torch.zeros(levels.shape[0], 256, device=x8.device, dtype=x8.dtype)
    hist.scatter_(1, levels, 1.0)
    return hist.sum(1)


def _poisson(x: Tensor, gen: torch.Generator | None) -> Tensor:
    """Poisson noise of the peer's ``generate_poisson_noise_pt``: x rounded to 8 bits, λ = x·2^⌈log₂ levels⌉."""
    x8 = (x.clamp(0, 1) * 255).round() / 255
    vals = torch.exp2(torch.ceil(torch.log2(_distinct_levels(x8)))).view(-1, 1, 1, 1)
    return torch.poisson(x8 * vals, generator=gen) / vals - x8


def add_poisson_noise(img: Tensor, scale: Tensor, gray: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """img + scale · (Poisson(λ)/v − x₈), λ = v·x₈, v = 2^⌈log₂(distinct 8-bit levels)⌉; clipped to [0, 1].

    The grey variant draws the noise on the luma (ITU-R 601: 0.299, 0.587, 0.114) and shares it.
    img (B, 3, H, W) in [0, 1]; scale (B,); gray (B,) bool on the CPU (a field is drawn only when
    some image needs it).
    """
    gray_c = gray.cpu()
    noise = _poisson(img, gen) if not gray_c.all() else None
    noise_gray = None
    if gray_c.any():
        w = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype).to(img.device, non_blocking=True).view(1, 3, 1, 1)
        luma = (img * w).sum(1, keepdim=True) if img.shape[1] == 3 else img[:, :1]
        noise_gray = _poisson(luma, gen).expand_as(img)
    if noise is None or noise_gray is None:
        n = noise if noise is not None else noise_gray
    else:
        n = torch.where(gray.to(img.device, non_blocking=True).view(-1, 1, 1, 1), noise_gray, noise)
    return (img + n * scale.to(img.device, img.dtype, non_blocking=True).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def jpeg(img: Tensor, quality: Tensor) -> Tensor:
    """JPEG encode + decode at ``quality`` (B,) in (0, 100] of img (B, 3, H, W) in [0, 1] (clamped first).

    kornia's differentiable codec, computed in fp32 (IJG tables, 4:2:0, pads to 16 internally).
    Keep ``quality`` on the CPU (as :func:`degrade` does): kornia reads it for a range check and
    moves it to the images' device itself, so a CPU tensor costs no device sync.
    """
    from kornia.enhance import jpeg_codec_differentiable

    x = img.clamp(0.0, 1.0).float()
    return jpeg_codec_differentiable(x, quality.to(dtype=x.dtype)).to(img.dtype)


def usm_kernel_1d(radius: int = 50, sigma: float = 0.0) -> Tensor:
    """OpenCV's ``getGaussianKernel``: size radius+1 if even; σ = 0.3((k−1)/2 − 1) + 0.8 when 0: (k,) float64, sum 1."""
    k = radius + 1 if radius % 2 == 0 else radius
    if sigma <= 0:
        sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    ax = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def usm_kernel(radius: int = 50, sigma: float = 0.0) -> Tensor:
    """The peer's USM Gaussian (``USMSharp``): the outer product of :func:`usm_kernel_1d`, (k, k) float64 summing to 1."""
    g = usm_kernel_1d(radius, sigma)
    return torch.outer(g, g)


def _band(g: Tensor, n: int) -> Tensor:
    """(n + k − 1, n) banded matrix T with T[j + i, j] = g[i]: ``x_padded @ T`` correlates each row with g."""
    k = g.numel()
    r = torch.arange(n + k - 1, device=g.device)[:, None] - torch.arange(n, device=g.device)[None, :]
    return torch.where((r >= 0) & (r < k), g[r.clamp(0, k - 1)], torch.zeros((), dtype=g.dtype, device=g.device))


def _separable_blur(img: Tensor, g: Tensor) -> Tensor:
    """``filter2d(img, outer(g, g))`` as a row pass and a column pass on the same reflect-padded image,
    each one matrix product with a banded matrix (BLAS: 5× faster than the two 1-D convolutions on a
    CPU, measured on 12×3×400², and 2k instead of k² multiply-adds of the 2-D filter); equal up to rounding."""
    h, w = img.shape[-2:]
    p = g.numel() // 2
    mode = "reflect" if p < h and p < w else "replicate"
    g = g.to(img.device, img.dtype, non_blocking=True)
    x = F.pad(img, (p, p, p, p), mode=mode)
    return _band(g, h).T @ (x @ _band(g, w))


def usm_sharpen(img: Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10.0) -> Tensor:
    """Unsharp masking of the ground truth (Real-ESRGAN §4.1, the peer's ``USMSharp``).

    residual = img − G∗img; mask = |residual|·255 > threshold, softened by G; returns
    soft·clip(img + weight·residual, 0, 1) + (1 − soft)·img. img (B, C, H, W) in [0, 1].
    """
    g = usm_kernel_1d(radius)
    blur = _separable_blur(img, g)
    residual = img - blur
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    soft = _separable_blur(mask, g)
    sharp = (img + weight * residual).clamp(0.0, 1.0)
    return soft * sharp + (1 - soft) * img


# --- the pipeline ------------------------------------------------------------------------------
def _resize_draw(gen: torch.Generator, probs: tuple[float, float, float], rng: tuple[float, float]) -> tuple[float, str]:
    """Per-batch (factor, mode): up U[1, hi] / down U[lo, 1] / keep 1 with ``probs``; mode uniform."""
    kind = int(torch.multinomial(torch.tensor(probs, dtype=torch.float64), 1, generator=gen))
    u = float(torch.rand((), generator=gen, dtype=torch.float64))
    mode = RESIZE_MODES[int(torch.randint(3, (), generator=gen))]
    factor = (1 + u * (rng[1] - 1), rng[0] + u * (1 - rng[0]), 1.0)[kind]
    return factor, mode


def _noise(out: Tensor, gen: torch.Generator, dev_gen: torch.Generator | None, gauss_p: float,
           sigma: tuple[float, float], poisson: tuple[float, float], gray_p: float) -> Tensor:
    b = out.shape[0]
    use_gauss = float(torch.rand((), generator=gen)) < gauss_p
    sig = _uniform(gen, b, *sigma) / 255.0
    sc = _uniform(gen, b, *poisson)
    gray = torch.rand(b, generator=gen) < gray_p
    if use_gauss:
        return add_gaussian_noise(out, sig.float(), gray, dev_gen)
    return add_poisson_noise(out, sc.float(), gray, dev_gen)


def _interpolate(x: Tensor, mode: str, size: tuple[int, int] | None = None, factor: float | None = None) -> Tensor:
    if size is None and factor is not None and min(int(x.shape[-2] * factor), int(x.shape[-1] * factor)) < 1:
        size = (max(1, int(x.shape[-2] * factor)), max(1, int(x.shape[-1] * factor)))  # tiny inputs: keep a pixel
    if size is not None:
        return F.interpolate(x, size=size, mode=mode)
    return F.interpolate(x, scale_factor=factor, mode=mode)  # as the peer: the factor maps the coordinates


@torch.no_grad()
def degrade(hr: Tensor, generator: torch.Generator, cfg: DegradationConfig | None = None) -> Tensor:
    """Synthesize LR images from HR ones with Real-ESRGAN's second-order degradation.

    Args:
        hr: (B, 3, H, W) in [0, 1] on any device (the peer degrades the USM-sharpened GT:
            pass ``usm_sharpen(gt)`` for that); H, W multiples of ``cfg.scale``.
        generator: a CPU ``torch.Generator``; every random choice is drawn from it (and the
            device's noise generator is seeded from it), so the output is a function of its
            state.
        cfg: the parameters (defaults: Real-ESRGAN's).

    Returns: (B, 3, H/scale, W/scale) fp32 in [0, 1], multiples of 1/255. No gradient.
    """
    cfg = cfg or DegradationConfig()
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("degrade: pass a CPU torch.Generator (it draws the parameters; pixel noise is seeded from it)")
    if hr.dim() != 4 or hr.shape[1] != 3:
        raise ValueError(f"degrade expects (B, 3, H, W) images, got {tuple(hr.shape)}")
    b, _, h, w = hr.shape
    s = cfg.scale
    if h % s or w % s:
        raise ValueError(f"degrade: H and W must be multiples of the scale {s}, got {h}×{w}")
    gen = generator
    if hr.device.type == "cpu":
        dev_gen = gen
    else:
        dev_gen = torch.Generator(device=hr.device)
        dev_gen.manual_seed(int(torch.randint(0, 2**62, (), generator=gen)))
    dev = hr.device
    out = hr.float()
    k1 = random_kernels(b, gen, cfg, 1).float().to(dev, non_blocking=True)
    k2 = random_kernels(b, gen, cfg, 2).float().to(dev, non_blocking=True)
    k_sinc = random_final_sinc(b, gen, cfg).float().to(dev, non_blocking=True)

    # first stage
    out = filter2d(out, k1)
    factor, mode = _resize_draw(gen, cfg.resize_prob, cfg.resize_range)
    out = _interpolate(out, mode, factor=factor)
    out = _noise(out, gen, dev_gen, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range, cfg.gray_noise_prob)
    out = jpeg(out, _uniform(gen, b, *cfg.jpeg_range).float())

    # second stage
    if float(torch.rand((), generator=gen)) < cfg.second_blur_prob:
        out = filter2d(out, k2)
    factor, mode = _resize_draw(gen, cfg.resize_prob2, cfg.resize_range2)
    out = _interpolate(out, mode, size=(max(1, int(h / s * factor)), max(1, int(w / s * factor))))
    out = _noise(out, gen, dev_gen, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2,
                 cfg.gray_noise_prob2)
    sinc_first = float(torch.rand((), generator=gen)) < 0.5
    mode = RESIZE_MODES[int(torch.randint(3, (), generator=gen))]
    quality = _uniform(gen, b, *cfg.jpeg_range2).float()
    if sinc_first:  # resize back + sinc, then JPEG
        out = filter2d(_interpolate(out, mode, size=(h // s, w // s)), k_sinc)
        out = jpeg(out, quality)
    else:  # JPEG, then resize back + sinc
        out = jpeg(out, quality)
        out = filter2d(_interpolate(out, mode, size=(h // s, w // s)), k_sinc)
    return (out * 255.0).round().clamp(0, 255) / 255.0
