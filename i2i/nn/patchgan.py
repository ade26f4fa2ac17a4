"""(Conditional) PatchGAN / PixelGAN discriminator of pix2pix.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017: §3.2.2 (Markovian discriminator: classify each N×N patch as real
or fake, average the responses), §4.4 / Fig. 6 (1×1 PixelGAN, 16×16, 70×70 and 286×286
patches) and appendix 6.1.2 (70×70 = C64-C128-C256-C512, 4×4 convs, LeakyReLU 0.2, no
norm on C64, then a conv to one channel). As in the authors' code the last two convs have
stride 1 and every conv has padding 1; the PixelGAN uses 1×1 convs throughout.

Conditioning: the discriminator sees the pair (condition, image) concatenated along the
channel axis; the recipe does the concatenation (``i2i.recipes.pix2pix``), so
``in_channels`` = condition channels + image channels (e.g. 1 + 3 for sketch -> photo,
3 + 3 for facades). An unconditional D (``conditional: false`` in the recipe) takes the
image channels only.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS
from .blocks import Init, init_weights, norm_layer


@DISCRIMINATORS.register("patchgan")
class PatchGAN(nn.Module):
    """Fully convolutional D that outputs one real/fake logit per overlapping patch.

    ::

        cat(A, B)  ─► C64 ─► C128 ─► C256 ─► C512 ─► conv ─► (N, 1, h, w) logits
        (N, Cin, H, W)  s2     s2      s2     s1       s1    each logit sees a 70×70 patch
                        └────── n_layers stride-2 convs ──┘  (n_layers=3, the default)

    ``n_layers`` sets the patch (receptive field) size: 0 -> 1×1 (PixelGAN, 1×1 convs),
    1 -> 16×16, 2 -> 34×34, 3 -> 70×70, 4 -> 142×142, 5 -> 286×286. See
    :func:`receptive_field`.

    Args:
        in_channels: channels of the concatenated (condition, image) input.
        n_layers: stride-2 layers (0 = PixelGAN).
        base_channels: filters of the first layer; doubled per layer up to ``max_channels``.
        max_channels: filter cap (512 in the paper).
        norm: ``batch`` (paper), ``instance`` or ``none``; never on the first layer.
        init: ``normal`` (the released pix2pix/CycleGAN code: N(0, 0.02), BN scale N(1, 0.02)),
            ``kaiming`` or ``default`` (PyTorch's); see :func:`i2i.nn.blocks.init_weights`.

    Shapes: ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, 1, h, w)`` raw logits, with
    ``h = H / 2**n_layers - 2`` for n_layers >= 1 (``h = H`` for the PixelGAN).
    """

    def __init__(self, in_channels: int = 6, n_layers: int = 3, base_channels: int = 64, max_channels: int = 512,
                 norm: Literal["batch", "instance", "none"] = "batch", init: Init = "normal"):
        super().__init__()
        if n_layers < 0:
            raise ConfigError(f"must be >= 0 (0 = PixelGAN), got {n_layers}", "n_layers")
        self.n_layers = n_layers
        bias = norm == "none"  # a following norm makes the conv bias redundant
        layers: list[nn.Module]
        if n_layers == 0:
            c1, c2 = base_channels, min(2 * base_channels, max_channels)
            layers = [
                nn.Conv2d(in_channels, c1, 1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(c1, c2, 1, bias=bias), norm_layer(norm, c2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(c2, 1, 1),
            ]
        else:
            ch = base_channels
            layers = [nn.Conv2d(in_channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            for i in range(1, n_layers + 1):
                # n_layers-1 more stride-2 convs, then one stride-1 conv that widens once more
                nxt = min(base_channels * 2**i, max_channels)
                stride = 2 if i < n_layers else 1
                layers += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=bias), norm_layer(norm, nxt),
                           nn.LeakyReLU(0.2, inplace=True)]
                ch = nxt
            layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


@DISCRIMINATORS.register("pixelgan")
def pixelgan(in_channels: int = 6, base_channels: int = 64,
             norm: Literal["batch", "instance", "none"] = "batch", init: Init = "normal") -> PatchGAN:
    """1×1 PatchGAN: judges each pixel's colour given its condition (paper Fig. 6, left)."""
    return PatchGAN(in_channels, 0, base_channels, 512, norm, init)


def receptive_field(module_or_cfg: nn.Module | Mapping[str, Any]) -> int:
    """Receptive field (pixels, one side) of one output of a chain of convolutions.

    Walks the ``Conv2d`` layers in registration order (which is forward order for the
    sequential discriminators here) with the usual recurrence, starting from ``r = 1``,
    ``jump = 1``::

        r    += (kernel - 1) · dilation · jump
        jump *= stride

    Pooling and branching are not modelled: pass only plain conv chains.

    Args:
        module_or_cfg: a built module, or a discriminator config mapping
            ``{"type": "patchgan", "n_layers": 3, ...}`` (built on the fly; ``type`` defaults
            to ``patchgan``).
    """
    if isinstance(module_or_cfg, Mapping):
        cfg = dict(module_or_cfg)
        cfg.setdefault("type", "patchgan")
        module = DISCRIMINATORS.build(cfg)
    else:
        module = module_or_cfg
    r, jump = 1, 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
            r += (k - 1) * d * jump
            jump *= s
    return r
