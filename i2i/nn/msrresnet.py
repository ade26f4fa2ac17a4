"""MSRResNet and EDSR: BasicSR's two plain residual SR networks (no batch norm).

EDSR: Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017
(arXiv:1707.02921), §3.1-3.2 and Fig. 2-3: SRResNet's residual blocks without batch norm, the
residual scaled by 0.1 in the large model (256 features, 32 blocks) for stable training, the
DIV2K mean subtracted from the input (pixel values in [0, 255]) and added back::

    LR (N, 3, h, w) in [0, 1]
      │ (x - mean) · 255
      │ conv_first 3×3 ───────────────────────────┐
      │ body: B × [conv 3×3 ─ ReLU ─ conv 3×3, ·res_scale, + skip]
      │ conv_after_body 3×3 ─ (+) ◄───────────────┘
      │ upsample: log2(s) × [conv → 4·F ─ PixelShuffle 2]  (×3: conv → 9·F ─ PixelShuffle 3)
      │ conv_last 3×3 → 3
      │ / 255 + mean
    SR (N, 3, h·s, w·s)

MSRResNet ("modified SRResNet", BasicSR / Wang et al.'s ESRGAN code base): SRResNet (Ledig et al.
2017) with the same residual blocks without batch norm, LeakyReLU(0.1) after the first conv, each
upsampling and ``conv_hr``, and the bilinearly upsampled input added to the output::

    LR ─ conv_first ─ LReLU ─ B × block ─ (×4: 2 × [conv → 4·F ─ PixelShuffle 2 ─ LReLU];
       ×2/×3: conv → s²·F ─ PixelShuffle s ─ LReLU) ─ conv_hr ─ LReLU ─ conv_last ─ (+ bilinear ×s of LR)

State-dict keys follow BasicSR's ``basicsr/archs/srresnet_arch.py`` (``conv_first``,
``body.N.conv1/conv2``, ``upconv1``, ``upconv2``, ``conv_hr``, ``conv_last``) and
``basicsr/archs/edsr_arch.py`` (``conv_first``, ``body.N.conv1/conv2``, ``conv_after_body``,
``upsample.0``, ``upsample.2``, …, ``conv_last``), so their released files (``params`` /
``params_ema``) load with plain ``load_state_dict``. EDSR's mean is not in the state dict (a
non-persistent buffer, as BasicSR keeps it out); BasicSR's configs: 0.4488, 0.4371, 0.4040.
Initialisation: PyTorch's defaults (the peers scale some by 0.1; a fine-tune starts from a file).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS

__all__ = ["DIV2K_MEAN", "EDSR", "MSRResNet", "ResidualBlockNoBN"]

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
"""RGB mean of DIV2K that EDSR subtracts (BasicSR's ``rgb_mean``; Lim et al. 2017's code)."""


class ResidualBlockNoBN(nn.Module):
    """x + res_scale · conv2(ReLU(conv1(x))), 3×3 convs with bias: (N, F, H, W) -> same shape."""

    def __init__(self, width: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


def _check(scale: int, scales: tuple[int, ...] | None, **sizes: int) -> None:
    if isinstance(scale, bool) or (scales is not None and scale not in scales):
        raise ConfigError(f"must be one of {', '.join(map(str, scales or ()))}, got {scale!r}", "scale")
    for key, value in sizes.items():
        if value < (0 if key == "num_blocks" else 1):
            raise ConfigError(f"must be >= {0 if key == 'num_blocks' else 1}, got {value}", key)


@GENERATORS.register("msrresnet")
class MSRResNet(nn.Module):
    """BasicSR's MSRResNet (see the module docstring).

    Args:
        scale: 2, 3 or 4. in_channels / out_channels: image channels. width: features (64).
        num_blocks: residual blocks (16).

    Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h·scale, w·scale), unbounded
    (clamp to [0, 1] for images); ``in_channels`` must equal ``out_channels`` (the input is added).
    """

    def __init__(self, scale: int = 4, in_channels: int = 3, out_channels: int = 3, width: int = 64, num_blocks: int = 16):
        super().__init__()
        _check(scale, (2, 3, 4), in_channels=in_channels, out_channels=out_channels, width=width, num_blocks=num_blocks)
        if in_channels != out_channels:
            raise ConfigError(f"must equal in_channels ({in_channels}): the upsampled input is added, got {out_channels}",
                              "out_channels")
        self.scale = scale
        self.conv_first = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(width) for _ in range(num_blocks)))
        step = 2 if scale == 4 else scale
        self.upconv1 = nn.Conv2d(width, width * step * step, 3, 1, 1)
        self.shuffle1 = nn.PixelShuffle(step)  # registered in forward order (i2i.foreign.staged_radius reads it)
        if scale == 4:
            self.upconv2 = nn.Conv2d(width, width * 4, 3, 1, 1)
            self.shuffle2 = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_last = nn.Conv2d(width, out_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(F.leaky_relu(self.conv_first(x), 0.1))
        out = F.leaky_relu(self.shuffle1(self.upconv1(out)), 0.1)
        if self.scale == 4:
            out = F.leaky_relu(self.shuffle2(self.upconv2(out)), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


@GENERATORS.register("edsr")
class EDSR(nn.Module):
    """EDSR in BasicSR's layout (see the module docstring).

    Args:
        scale: a power of 2, or 3. in_channels: 3 (the DIV2K mean is per RGB channel). out_channels: 3.
        width: features (64 for EDSR-M, 256 for EDSR-L). num_blocks: 16 (M) or 32 (L).
        res_scale: residual scaling, 1 (M) or 0.1 (L). img_range: 255 (the pixel scale inside).

    Shapes: (N, 3, h, w) in [0, 1] -> (N, 3, h·scale, w·scale), unbounded (clamp for images).
    """

    def __init__(self, scale: int = 4, in_channels: int = 3, out_channels: int = 3, width: int = 64, num_blocks: int = 16,
                 res_scale: float = 1.0, img_range: float = 255.0):
        super().__init__()
        _check(scale, None, width=width, num_blocks=num_blocks)
        if scale != 3 and (scale < 2 or scale & (scale - 1)):
            raise ConfigError(f"must be a power of 2 or 3, got {scale!r}", "scale")
        if in_channels != 3 or out_channels != 3:
            raise ConfigError(f"EDSR's mean is per RGB channel: in_channels and out_channels must be 3, got {in_channels}, "
                              f"{out_channels}", "in_channels")
        self.scale, self.img_range = scale, float(img_range)
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, width, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(width, res_scale) for _ in range(num_blocks)))
        self.conv_after_body = nn.Conv2d(width, width, 3, 1, 1)
        ups: list[nn.Module] = []
        for f in [3] if scale == 3 else [2] * int(math.log2(scale)):
            ups += [nn.Conv2d(width, width * f * f, 3, 1, 1), nn.PixelShuffle(f)]
        self.upsample = nn.Sequential(*ups)
        self.conv_last = nn.Conv2d(width, 3, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        mean = self.mean.to(x.dtype)
        x = self.conv_first((x - mean) * self.img_range)
        x = self.conv_after_body(self.body(x)) + x
        return self.conv_last(self.upsample(x)) / self.img_range + mean
