"""U-Net generator of pix2pix.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017: §3.2.1 (generator with skips, Fig. 3) and appendix 6.1.1
(layer configuration). ``Ck`` = Conv-Norm-ReLU with k filters, ``CDk`` = Conv-Norm-
Dropout(0.5)-ReLU; every conv is 4×4 with stride 2 (down in the encoder, up in the
decoder):

    encoder  C64-C128-C256-C512-C512-C512-C512-C512          (LeakyReLU 0.2; no norm on C64)
    decoder  CD512-CD512-CD512-C512-C256-C128-C64 -> conv -> Tanh   (ReLU; skips concatenated)

Ronneberger et al., "U-Net", MICCAI 2015, for the skip idea.

Skips and activations are the released code's (``UnetSkipConnectionBlock``): each decoder
layer applies ReLU to its input — the concatenation of the previous decoder output and the
skip — before its transposed conv. The encoder's LeakyReLU output is what gets concatenated
(the released code's in-place LeakyReLU rewrites the skip tensor before ``torch.cat`` reads
it), so the decoder sees ReLU(skip), not the LeakyReLU'd one with its ×0.2 negative part.

Two details follow the authors' released code rather than the text, both for a reason:
the bottleneck (innermost) conv has no norm, because at 1×1 spatial size with batch 1
instance norm (and batch norm at batch 1) would zero its output; and the conv biases
are dropped where a norm follows (the norm's shift makes them redundant).
Dropout is placed, as the paper's table says, on the first ``num_dropout`` decoder layers
(the released code puts it one layer later); at test time the paper keeps dropout on as
the noise source, which is the caller's choice of ``train()``/``eval()``.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from .blocks import Init, init_weights, norm_layer


def _down(cin: int, cout: int, norm: str) -> nn.Sequential:
    """4×4 stride-2 conv -> norm -> LeakyReLU(0.2): halves H and W."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"),
        norm_layer(norm, cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _up(cin: int, cout: int, norm: str, dropout: float) -> nn.Sequential:
    """4×4 stride-2 transposed conv -> norm -> [dropout]: doubles H and W. Its ReLU comes first,
    on the concatenated input, in :meth:`UNet.forward` (a module here would shift the
    state-dict indices of earlier i2i checkpoints)."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm == "none"), norm_layer(norm, cout)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@GENERATORS.register("unet")
class UNet(nn.Module):
    """pix2pix U-Net: an encoder-decoder whose mirrored layers are joined by skips.

    ::

        x ─ C64 ──────────────────────────────────────── cat ─ up ─ Tanh ─► y
              └ C128 ──────────────────────────── cat ─ C64 ┘
                   └ C256 ─────────────── cat ─ C128 ┘
                         └ ...  C512 (1×1) ─ CD512 ┘          (num_downs levels)

    Each level halves the resolution on the way down and doubles it on the way up; the
    decoder's output at a level is concatenated channel-wise with the encoder's output of
    the same size, so low-level detail (edges, positions) bypasses the bottleneck.

    Args:
        in_channels: channels of the input image A.
        out_channels: channels of the output image.
        num_downs: number of stride-2 levels; 8 takes 256×256 down to 1×1 (``unet_256``),
            7 takes 128×128 to 1×1 (``unet_128``). H and W must be divisible by
            ``2**num_downs`` (see :attr:`multiple`).
        base_channels: filters of the first level; doubled per level up to ``max_channels``.
        max_channels: cap on the filters of any level (512 in the paper).
        norm: ``batch`` (paper), ``instance`` or ``none``.
        dropout: dropout probability of the first decoder layers (the generator's noise).
        num_dropout: how many decoder layers, counted from the bottleneck, get dropout
            (at most ``num_downs - 1``: the output layer never has dropout).
        init: ``normal`` (the released pix2pix/CycleGAN code: N(0, 0.02), BN scale N(1, 0.02)),
            ``kaiming`` or ``default`` (PyTorch's); see :func:`i2i.nn.blocks.init_weights`.

    Shapes: ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, base_channels: int = 64,
                 max_channels: int = 512, norm: Literal["batch", "instance", "none"] = "batch",
                 dropout: float = 0.5, num_dropout: int = 3, init: Init = "normal"):
        super().__init__()
        if num_downs < 1:
            raise ConfigError(f"must be >= 1, got {num_downs}", "num_downs")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"must be in [0, 1), got {dropout}", "dropout")
        if num_dropout < 0:
            raise ConfigError(f"must be >= 0, got {num_dropout}", "num_dropout")
        if base_channels < 1 or max_channels < base_channels:
            raise ConfigError(f"need 1 <= base_channels <= max_channels, got {base_channels}, {max_channels}",
                              "base_channels")
        self.num_downs = num_downs
        self.multiple = 2**num_downs
        ch = [min(base_channels * 2**i, max_channels) for i in range(num_downs)]

        # Encoder level i maps ch[i-1] -> ch[i]. The first level sees raw pixels (no norm,
        # as in the paper); the last is the bottleneck (no norm, see module docstring).
        self.encoder = nn.ModuleList()
        for i in range(num_downs):
            cin = in_channels if i == 0 else ch[i - 1]
            self.encoder.append(_down(cin, ch[i], "none" if i in (0, num_downs - 1) else norm))

        # Decoder layer j (j = 0 at the bottleneck) undoes encoder level i = num_downs-1-j.
        # Its input is the previous decoder output concatenated with the skip, hence 2×ch[i].
        self.decoder = nn.ModuleList()
        for j in range(num_downs - 1):
            i = num_downs - 1 - j
            cin = ch[i] if j == 0 else 2 * ch[i]
            self.decoder.append(_up(cin, ch[i - 1], norm, dropout if j < num_dropout else 0.0))
        # The outermost layer produces pixels: no norm, Tanh to land in [-1, 1].
        self.head = nn.Sequential(
            nn.ConvTranspose2d(ch[0] if num_downs == 1 else 2 * ch[0], out_channels, 4, 2, 1),
            nn.Tanh(),
        )
        init_weights(self, init)

    def check_size(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if x.dim() != 4 or h % self.multiple or w % self.multiple:
            raise ValueError(
                f"UNet with num_downs={self.num_downs} needs a (N, C, H, W) input with H and W divisible by "
                f"{self.multiple}, got shape {tuple(x.shape)}; crop/resize it, or pad with "
                "i2i.recipes.pix2pix.pad_predict")

    def forward(self, x: Tensor) -> Tensor:
        self.check_size(x)
        skips: list[Tensor] = []
        for down in self.encoder:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck output feeds the decoder directly, not as a skip
        for j, up in enumerate(self.decoder):  # ReLU on the (concatenated) input, as the released code
            x = up(torch.relu(x if j == 0 else torch.cat([x, skips.pop()], 1)))
        return self.head(torch.relu(x if self.num_downs == 1 else torch.cat([x, skips.pop()], 1)))


@GENERATORS.register("unet_128")
def unet_128(in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
             norm: Literal["batch", "instance", "none"] = "batch", dropout: float = 0.5, init: Init = "normal") -> UNet:
    """U-Net for 128×128 inputs (7 levels, 128 -> 1×1)."""
    return UNet(in_channels, out_channels, 7, base_channels, 512, norm, dropout, 3, init)


@GENERATORS.register("unet_256")
def unet_256(in_channels: int = 3, out_channels: int = 3, base_channels: int = 64,
             norm: Literal["batch", "instance", "none"] = "batch", dropout: float = 0.5, init: Init = "normal") -> UNet:
    """The paper's U-Net for 256×256 inputs (8 levels, 256 -> 1×1)."""
    return UNet(in_channels, out_channels, 8, base_channels, 512, norm, dropout, 3, init)
