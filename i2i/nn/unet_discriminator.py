"""U-Net discriminator with spectral normalisation (Real-ESRGAN).

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021 (arXiv:2107.10833), §3.3 and Fig. 6: a U-Net that outputs a realness value
*per pixel* (per-pixel feedback to the generator, after Schönfeld et al., CVPR 2020), with
spectral normalisation (Miyato et al., ICLR 2018) on every conv but the first and the last,
which stabilises training with the complex degradations::

    x (N, C, H, W)
      conv0 3×3 → 64 ─ LReLU ─────────────────────────────────────────┐ x0
      conv1 4×4 s2 → 128 ─ LReLU ─────────────────────────────┐ x1    │
      conv2 4×4 s2 → 256 ─ LReLU ──────────────────┐ x2       │       │
      conv3 4×4 s2 → 512 ─ LReLU                   │          │       │
      bilinear ×2 ─ conv4 3×3 → 256 ─ LReLU ─ (+x2)┘          │       │
      bilinear ×2 ─ conv5 3×3 → 128 ─ LReLU ─ (+x1) ──────────┘       │
      bilinear ×2 ─ conv6 3×3 → 64 ─ LReLU ─ (+x0) ───────────────────┘
      conv7 3×3 ─ LReLU ─ conv8 3×3 ─ LReLU ─ conv9 3×3 → 1
    logits (N, 1, H, W)

(LReLU slope 0.2; the ``(+)`` skips are dropped with ``skip_connection=False``.)

State-dict keys follow Real-ESRGAN's ``UNetDiscriminatorSN`` (``realesrgan/archs/discriminator_arch.py``):
``conv0.weight/bias``, ``conv{1..8}.weight_orig/weight_u/weight_v`` (``torch.nn.utils.spectral_norm``'s
layout, no bias), ``conv9.weight/bias``, so ``RealESRGAN_x4plus_netD.pth`` loads with plain
``load_state_dict``. Initialisation: PyTorch's defaults, as the peer's.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from ..errors import ConfigError
from ..registry import DISCRIMINATORS

__all__ = ["UNetDiscriminatorSN"]


@DISCRIMINATORS.register("unet_sn")
class UNetDiscriminatorSN(nn.Module):
    """Per-pixel U-Net discriminator with spectral norm (Real-ESRGAN §3.3).

    Args:
        in_channels: channels of the judged image (3).
        width: features of the first level (64); the levels have width, 2·, 4·, 8·width.
        skip_connection: add the encoder features to the decoder's (the paper: on).

    Shapes: (N, in_channels, H, W), images in [0, 1], H and W multiples of 8 ->
    (N, 1, H, W) raw logits, one per pixel.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, skip_connection: bool = True):
        super().__init__()
        for key, value in (("in_channels", in_channels), ("width", width)):
            if value < 1:
                raise ConfigError(f"must be >= 1, got {value}", key)
        self.in_channels = in_channels
        self.skip_connection = skip_connection
        w = width

        def sn_conv(cin: int, cout: int, k: int, s: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, k, s, 1, bias=False))

        self.conv0 = nn.Conv2d(in_channels, w, 3, 1, 1)
        self.conv1 = sn_conv(w, 2 * w, 4, 2)
        self.conv2 = sn_conv(2 * w, 4 * w, 4, 2)
        self.conv3 = sn_conv(4 * w, 8 * w, 4, 2)
        self.conv4 = sn_conv(8 * w, 4 * w, 3, 1)
        self.conv5 = sn_conv(4 * w, 2 * w, 3, 1)
        self.conv6 = sn_conv(2 * w, w, 3, 1)
        self.conv7 = sn_conv(w, w, 3, 1)
        self.conv8 = sn_conv(w, w, 3, 1)
        self.conv9 = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNetDiscriminatorSN expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs H and W divisible by 8, got {tuple(x.shape[-2:])}")

        def act(t: Tensor) -> Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: Tensor) -> Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)
