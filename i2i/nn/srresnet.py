"""SRResNet: the generator of SRGAN.

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (arXiv:1609.04802), Fig. 4 (top) and §2.2::

    LR (N, C_in, h, w)
      │ conv 9×9, 64 ─ PReLU ─────────────────────────────┐  head
      │ B × residual block:                                │
      │    x ─ conv3 ─ BN ─ PReLU ─ conv3 ─ BN ─ (+x)      │  body (B = 16)
      │ conv3 ─ BN ─ (+ head) ◄───────────────────────────┘  long skip
      │ log2(scale) × [conv3 64→256 ─ PixelShuffle ×2 ─ PReLU]   upsampler
      │ conv 9×9 → C_out                                      tail
    SR (N, C_out, h·scale, w·scale)

The paper uses two ×2 stages for ×4; ×2 and ×8 use one and three. ×3 uses one
conv 64→576 + PixelShuffle ×3 stage (sub-pixel convolution, Shi et al. 2016, ESPCN).
PReLU learns one slope per channel. Convolutions followed by batch norm carry no bias
(BN's shift makes it redundant); the others do.

Value ranges: the LR input and the SR output are meant for images in [0, 1]; the
network has no output activation (the paper's tanh is dropped so that the MSE
gradient does not vanish at saturated pixels), so callers clamp to [0, 1] at inference.

Parameter count (64 channels, 16 blocks, ×4, batch norm): 1,548,547 (see
tests/test_nn_srresnet.py for the sum layer by layer).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from .blocks import act_layer, conv_norm_act

__all__ = ["SRResNet", "ResidualBlock", "count_parameters", "srresnet_x2", "srresnet_x3", "srresnet_x4",
           "srresnet_x8"]

SCALES = (2, 3, 4, 8)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``module`` (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class ResidualBlock(nn.Module):
    """x + BN(conv3(PReLU(BN(conv3(x))))): (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, batch_norm: bool = True):
        super().__init__()
        norm = "batch" if batch_norm else "none"
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3, norm=norm, act="prelu"),
            conv_norm_act(channels, channels, 3, norm=norm, act="none"),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _upsampler(width: int, scale: int) -> nn.Sequential:
    """conv → PixelShuffle(r) → PReLU stages: (N, width, h, w) -> (N, width, h·scale, w·scale)."""
    factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
    layers: list[nn.Module] = []
    for r in factors:
        layers += [nn.Conv2d(width, width * r * r, 3, 1, 1), nn.PixelShuffle(r), act_layer("prelu", width)]
    return nn.Sequential(*layers)


@GENERATORS.register("srresnet")
class SRResNet(nn.Module):
    """SRResNet generator (Ledig et al. 2017, Fig. 4).

    Args:
        scale: upscaling factor, one of 2, 3, 4, 8.
        in_channels: channels of the LR input (3 for RGB).
        out_channels: channels of the SR output.
        width: feature channels throughout (64 in the paper).
        num_blocks: residual blocks B (16 in the paper).
        batch_norm: BN after the body convolutions (the paper); ``False`` drops it, as
            EDSR (Lim et al. 2017) found BN to hurt PSNR and cost memory.

    Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h·scale, w·scale),
    unbounded (clamp to [0, 1] for images).
    """

    def __init__(self, scale: int = 4, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_blocks: int = 16, batch_norm: bool = True):
        super().__init__()
        if isinstance(scale, bool) or scale not in SCALES:
            raise ConfigError(f"must be one of {', '.join(map(str, SCALES))}, got {scale!r}", "scale")
        for key, value, least in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                  ("width", width, 1), ("num_blocks", num_blocks, 0)):
            if value < least:
                raise ConfigError(f"must be >= {least}, got {value}", key)
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        norm = "batch" if batch_norm else "none"
        self.head = conv_norm_act(in_channels, width, 9, norm="none", act="prelu")
        self.body = nn.Sequential(
            *[ResidualBlock(width, batch_norm) for _ in range(num_blocks)],
            conv_norm_act(width, width, 3, norm=norm, act="none"),
        )
        self.upsample = _upsampler(width, scale)
        self.tail = nn.Conv2d(width, out_channels, 9, 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SRResNet expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        feat = self.head(x)
        # the long skip lets the body learn only the high-frequency residual
        feat = feat + self.body(feat)
        return self.tail(self.upsample(feat))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Inference: forward clamped to the image range [0, 1]."""
        return self(x).clamp_(0.0, 1.0)


def _preset(scale: int):
    def build(in_channels: int = 3, out_channels: int = 3, width: int = 64, num_blocks: int = 16,
              batch_norm: bool = True) -> SRResNet:
        return SRResNet(scale=scale, in_channels=in_channels, out_channels=out_channels, width=width,
                        num_blocks=num_blocks, batch_norm=batch_norm)

    build.__name__ = build.__qualname__ = f"srresnet_x{scale}"
    build.__doc__ = f"SRResNet ×{scale} (paper configuration by default); same arguments as ``srresnet`` but scale."
    return GENERATORS.register(build.__name__)(build)


srresnet_x2 = _preset(2)
srresnet_x3 = _preset(3)
srresnet_x4 = _preset(4)
srresnet_x8 = _preset(8)
