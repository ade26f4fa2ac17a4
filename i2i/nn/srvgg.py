"""SRVGGNetCompact: the compact VGG-style SR network of Real-ESRGAN's ``realesr-*v3`` models.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021 (arXiv:2107.10833); the compact network is the one released with the
paper's code for ``realesr-animevideov3`` (16 convs) and ``realesr-general-x4v3`` (32 convs)::

    LR (N, C_in, h, w) ──────────────────────────────────────────────┐
      │ conv 3×3 → 64 ─ act                                          │
      │ num_conv × [conv 3×3 64→64 ─ act]                            │ nearest ×scale
      │ conv 3×3 → C_out·scale²                                      │
      │ PixelShuffle(scale)                                          │
      ▼ (+) ◄────────────────────────────────────────────────────────┘
    SR (N, C_out, h·scale, w·scale)

Every convolution runs at LR resolution; the network learns the residual over nearest-
neighbour upsampling. ``act`` is a per-channel PReLU (default), ReLU or LeakyReLU(0.1).

State-dict keys follow Real-ESRGAN's ``realesrgan/archs/srvgg_arch.py``: one ``body``
list, index 2k the k-th conv and 2k+1 its activation (``body.0.weight``, ``body.1.weight`` for
a PReLU, …, ``body.{2·num_conv+2}.weight``), so ``realesr-general-x4v3.pth`` loads with plain
``load_state_dict``. Initialisation: PyTorch's defaults (PReLU slope 0.25), as the peer's.

Parameter count (×4, 64 features, 32 convs, PReLU): 1,213,296 (tests/test_nn_srvgg.py).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from ..tiling import StagePlan

STAGE_CONVS = 4
"""Body convolutions per stage of :func:`compact_stage_plan`: a stage's radius (4 LR pixels)
costs ((t + 8) / t)² of a t² tile's work as context."""

__all__ = ["SRVGGNetCompact"]


def _activation(kind: str, width: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=width)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.1, inplace=True)
    raise ConfigError(f"must be 'prelu', 'relu' or 'leakyrelu', got {kind!r}", "act")


@GENERATORS.register("srvgg_compact")
class SRVGGNetCompact(nn.Module):
    """Compact VGG-style SR network (Real-ESRGAN's ``realesr-general-x4v3`` family).

    Args:
        scale: upscaling factor (any integer >= 1; the released models use 4).
        in_channels: channels of the LR input.
        out_channels: channels of the SR output.
        width: feature channels (64).
        num_conv: body convolutions after the first (32 for realesr-general-x4v3, 16 for
            realesr-animevideov3).
        act: ``prelu`` (per channel), ``relu`` or ``leakyrelu`` (slope 0.1).

    Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h·scale, w·scale),
    unbounded (clamp to [0, 1] for images). The nearest-upsampled input is added, so
    ``in_channels`` must equal ``out_channels``.
    """

    def __init__(self, scale: int = 4, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_conv: int = 32, act: Literal["prelu", "relu", "leakyrelu"] = "prelu"):
        super().__init__()
        if isinstance(scale, bool) or scale < 1:
            raise ConfigError(f"must be an integer >= 1, got {scale!r}", "scale")
        for key, value, least in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                  ("width", width, 1), ("num_conv", num_conv, 0)):
            if value < least:
                raise ConfigError(f"must be >= {least}, got {value}", key)
        if in_channels != out_channels:
            raise ConfigError(f"must equal in_channels ({in_channels}): the upsampled input is added, got {out_channels}",
                              "out_channels")
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1), _activation(act, width)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(width, width, 3, 1, 1), _activation(act, width)]
        layers.append(nn.Conv2d(width, out_channels * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SRVGGNetCompact expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Inference: forward clamped to the image range [0, 1]."""
        return self(x).clamp_(0.0, 1.0)

    def stage_plan(self) -> StagePlan:
        """The network in stages for staged exact tiling (:func:`compact_stage_plan`)."""
        return compact_stage_plan(self.body, self.upsampler, self.scale)


def compact_stage_plan(body: nn.ModuleList, upsampler: nn.Module, scale: int, convs: int = STAGE_CONVS) -> StagePlan:
    """SRVGGNetCompact (this module's, or spandrel's with the same ``body`` list) in stages
    (:func:`i2i.tiling.run_staged`): the first conv + activation (radius 1); ``convs`` body
    convolutions + activations per block (radius ``convs``); the last conv, the pixel shuffle and
    the nearest-upsampled image (radius 1)."""
    layers = list(body)
    head, pairs, last = nn.Sequential(*layers[:2]), layers[2:-1], layers[-1]
    blocks = tuple(nn.Sequential(*pairs[i:i + 2 * convs]) for i in range(0, len(pairs), 2 * convs))

    def tail(feats: Tensor, x: Tensor) -> Tensor:
        return upsampler(last(feats)) + F.interpolate(x, scale_factor=scale, mode="nearest")

    return StagePlan(head=head, blocks=blocks, tail=tail, head_radius=1, block_radius=convs if blocks else 0,
                     tail_radius=1, width=int(last.in_channels))
