"""VGG-style discriminator of SRGAN.

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (arXiv:1609.04802), Fig. 4 (bottom) and §2.1
(after the guidelines of Radford et al. 2016: strided convolutions instead of pooling,
LeakyReLU α = 0.2, batch norm)::

    HR or SR image (N, C, H, W)
      conv3 64, s1 ─ LeakyReLU
      conv3-BN-LeakyReLU ×7:   64 s2 │ 128 s1 │ 128 s2 │ 256 s1 │ 256 s2 │ 512 s1 │ 512 s2
      AdaptiveAvgPool → (512, P, P)                       (see below)
      dense 1024 ─ LeakyReLU ─ dense 1
    logits (N, 1)

The paper ends with a sigmoid; here D returns the raw logit, which is what the
numerically stable objectives in :mod:`i2i.losses.adversarial` expect.

**Input size.** The paper trains on 96×96 crops, so its flattened features are
512×6×6 (four stride-2 convolutions: 96/16 = 6). To accept any size, the features
are average-pooled to a fixed P×P grid before the dense layers (``pool_size``,
default 6). At 96×96 the features already are 6×6, so the pooling is the identity and
the network *is* the paper's; at other sizes it averages (or, below 16·P, repeats)
feature cells, keeping the dense layers' shapes fixed so one checkpoint works for
every crop size. Inputs smaller than 16×16 still run but see less than one
feature cell per 16×16 patch, so use at least 16.

Channels scale with ``base_channels`` (64 in the paper): base × (1, 1, 2, 2, 4, 4, 8, 8).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS
from .blocks import conv_norm_act

__all__ = ["SRGANDiscriminator"]

# (channel multiplier of base_channels, stride) of the seven conv-BN-LeakyReLU blocks
_BLOCKS = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))


@DISCRIMINATORS.register("srgan_vgg")
class SRGANDiscriminator(nn.Module):
    """SRGAN's VGG-style discriminator (Ledig et al. 2017, Fig. 4).

    Args:
        in_channels: image channels (3 for RGB).
        base_channels: width of the first convolution (64 in the paper).
        pool_size: side P of the grid the features are averaged to before the dense
            layers; 6 reproduces the paper at 96×96 inputs.
        batch_norm: BN in the seven strided blocks (the paper); turn off for
            objectives that penalise per-sample gradients (WGAN-GP).

    Shapes: (N, in_channels, H, W) images in [0, 1], H, W ≥ 16 -> logits (N, 1).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, pool_size: int = 6,
                 batch_norm: bool = True):
        super().__init__()
        for key, value in (("in_channels", in_channels), ("base_channels", base_channels),
                           ("pool_size", pool_size)):
            if value < 1:
                raise ConfigError(f"must be >= 1, got {value}", key)
        self.in_channels = in_channels
        norm = "batch" if batch_norm else "none"
        layers = [conv_norm_act(in_channels, base_channels, 3, norm="none", act="leaky_relu")]
        cin = base_channels
        for mult, stride in _BLOCKS:
            layers.append(conv_norm_act(cin, base_channels * mult, 3, stride, norm=norm, act="leaky_relu"))
            cin = base_channels * mult
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool_size * pool_size, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"srgan_vgg expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        return self.classifier(self.pool(self.features(x)))
