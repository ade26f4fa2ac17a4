"""ResNet-block generator (the alternative to the U-Net in pix2pix/CycleGAN).

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016 (architecture in its supplementary material), as configured
by Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017, appendix 7.2:

    c7s1-64, d128, d256, R256 × n_blocks, u128, u64, c7s1-3

``c7s1-k``: 7×7 conv, stride 1, k filters, norm, ReLU; ``dk``: 3×3 conv stride 2;
``Rk``: residual block of two 3×3 convs; ``uk``: 3×3 fractionally-strided conv (stride ½).
Reflection padding (CycleGAN appendix) avoids the dark borders zero padding causes; the
last c7s1 has no norm and ends in Tanh. CycleGAN uses 6 blocks for 128×128 and 9 for
256×256 and higher resolutions.
"""
from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from .blocks import Init, init_weights, norm_layer


class ResnetBlock(nn.Module):
    """x + [pad-conv3-norm-ReLU-(dropout)-pad-conv3-norm](x); shape-preserving (N, C, H, W)."""

    def __init__(self, channels: int, norm: str, dropout: float = 0.0):
        super().__init__()
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@GENERATORS.register("resnet_generator")
class ResnetGenerator(nn.Module):
    """Downsample twice, transform with residual blocks, upsample twice.

    Args:
        in_channels / out_channels: image channels in and out.
        base_channels: filters of the first c7s1 layer (64); doubled at each downsampling.
        n_blocks: residual blocks at the lowest resolution (6 or 9 in CycleGAN).
        n_downsampling: stride-2 levels (2 in the paper); H, W must be divisible by
            ``2**n_downsampling`` (:attr:`multiple`) for the output to match the input.
        norm: ``instance`` (CycleGAN's choice), ``batch`` or ``none``.
        dropout: dropout inside the residual blocks (0 in the papers).
        init: ``normal`` (the released pix2pix/CycleGAN code: N(0, 0.02), BN scale N(1, 0.02)),
            ``kaiming`` or ``default`` (PyTorch's); see :func:`i2i.nn.blocks.init_weights`.

    Shapes: ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64, n_blocks: int = 9,
                 n_downsampling: int = 2, norm: Literal["batch", "instance", "none"] = "instance",
                 dropout: float = 0.0, init: Init = "normal"):
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"must be >= 0, got {n_blocks}", "n_blocks")
        if n_downsampling < 0:
            raise ConfigError(f"must be >= 0, got {n_downsampling}", "n_downsampling")
        self.multiple = 2**n_downsampling
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, base_channels, 7, bias=bias),
            norm_layer(norm, base_channels), nn.ReLU(inplace=True),
        ]
        ch = base_channels
        for _ in range(n_downsampling):  # d128, d256
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):  # u128, u64; output_padding=1 makes the size exactly double
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"ResnetGenerator needs H and W divisible by {self.multiple}, got shape "
                             f"{tuple(x.shape)}; pad with i2i.recipes.pix2pix.pad_predict")
        return self.model(x)


@GENERATORS.register("resnet_6blocks")
def resnet_6blocks(in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                   norm: Literal["batch", "instance", "none"] = "instance", dropout: float = 0.0,
                   init: Init = "normal") -> ResnetGenerator:
    """CycleGAN's generator for 128×128 images."""
    return ResnetGenerator(in_channels, out_channels, base_channels, 6, 2, norm, dropout, init)


@GENERATORS.register("resnet_9blocks")
def resnet_9blocks(in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
                   norm: Literal["batch", "instance", "none"] = "instance", dropout: float = 0.0,
                   init: Init = "normal") -> ResnetGenerator:
    """CycleGAN's generator for 256×256 and larger images."""
    return ResnetGenerator(in_channels, out_channels, base_channels, 9, 2, norm, dropout, init)
