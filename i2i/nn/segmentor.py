"""Segmentation networks s(x): the "generator" slot of the adversarial segmentation recipe.

Luc, Couprie, Chintala & Verbeek, "Semantic Segmentation using Adversarial Networks",
NIPS 2016 Workshop on Adversarial Training (arXiv:1611.08408): any convolutional
segmentor that maps an image to per-pixel class scores can be trained with their hybrid
loss (§3, eq. 1); the paper used a multi-scale network (Stanford Background) and DeepLab
LargeFOV (Pascal VOC). Two segmentors are offered here:

* ``timm_fcn``: any timm backbone with ``features_only=True`` and a light decoder:
  ``fcn``  -- FCN-8s-style score fusion (Long, Shelhamer & Darrell, "Fully Convolutional
  Networks for Semantic Segmentation", CVPR 2015, §4.2): a 1×1 score layer on the
  stride-8/16/32 features, summed coarse-to-fine after bilinear upsampling;
  ``unet`` -- a U-Net-style decoder (Ronneberger et al., MICCAI 2015) that upsamples
  and concatenates every feature level.
* ``small_segmentor``: a small from-scratch U-Net-like encoder-decoder for CPU training.

Input convention (both): images are float (N, 3, H, W) in **[0, 1]**; the network
normalises with the ImageNet mean/std itself (the statistics timm's pretrained weights
expect), so datasets, inference and the adversary all see plain [0, 1] images. Output:
logits (N, C, H, W) at the input resolution, for any H, W (odd sizes included: every
upsampling goes to the exact size of the skip it meets, then to the input size).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from .blocks import NormName, conv_norm_act, norm_layer

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class _Normalize(nn.Module):
    """[0, 1] RGB -> ImageNet-standardised. Non-persistent buffers: not part of checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _check_input(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"segmentor expects (N, 3, H, W) images in [0, 1], got shape {tuple(x.shape)}")


def _up_to(x: Tensor, ref: Tensor | tuple[int, int]) -> Tensor:
    size = tuple(ref.shape[-2:]) if isinstance(ref, Tensor) else ref
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# --- local weight files -------------------------------------------------------------------
def read_state_dict(path: str) -> dict[str, Tensor]:
    """Read a weight file without executing code: ``.safetensors``, or a torch file loaded
    with ``weights_only=True``. Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and
    strips a DDP ``module.`` prefix. A missing or unreadable file is a :class:`ConfigError`
    naming it (key ``pretrained``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"weight file {str(p)!r} does not exist (offline: give a local "
                          f".safetensors or .pth file, no hub names)", "pretrained")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(p), device="cpu")
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, pickled code refused by weights_only, ...
        raise ConfigError(f"cannot read weight file {str(p)!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          "pretrained") from None
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ConfigError(f"weight file {str(p)!r} does not hold a state dict of tensors", "pretrained")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def _timm_features(backbone: str, pretrained: str | None) -> nn.Module:
    """A timm ``features_only`` model, optionally initialised from a local weight file.

    The file is a checkpoint of the *whole* timm model (what ``timm.create_model(backbone)
    .state_dict()`` or a hub ``model.safetensors`` holds); timm itself drops the
    classifier and applies the model's own key filter. Because timm then loads
    non-strictly, we first check that the file covers every backbone tensor, so that a
    checkpoint of the wrong architecture fails loudly instead of training from a
    half-random init.
    """
    import timm

    if not timm.is_model(backbone):
        raise ConfigError(f"unknown timm model {backbone!r} (see timm.list_models())", "backbone")
    if pretrained is None:
        try:
            return timm.create_model(backbone, pretrained=False, features_only=True)
        except (RuntimeError, AssertionError, TypeError) as e:
            raise ConfigError(f"timm model {backbone!r} cannot be built with features_only=True: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}", "backbone") from None
    sd = read_state_dict(pretrained)
    # Key check against the classifier-free model: its keys are the backbone's.
    expected = timm.create_model(backbone, pretrained=False, num_classes=0).state_dict()
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        raise ConfigError(f"weight file {pretrained!r} does not match timm model {backbone!r}: "
                          f"{len(missing)} backbone tensors missing (e.g. {', '.join(missing[:3])})", "pretrained")
    try:
        # source="" so that the in-memory state dict wins over any hub source in the cfg.
        return timm.create_model(backbone, pretrained=True, features_only=True,
                                 pretrained_cfg_overlay={"state_dict": sd, "source": ""})
    except RuntimeError as e:  # shape mismatches
        raise ConfigError(f"weight file {pretrained!r} does not fit timm model {backbone!r}: "
                          f"{str(e).splitlines()[0]}", "pretrained") from None


# --- timm backbone + FCN / U-Net decoder --------------------------------------------------
class _FCNHead(nn.Module):
    """FCN-8s score fusion: score(f32)↑ + score(f16)↑ + score(f8), one 1×1 conv per level."""

    def __init__(self, channels: list[int], num_classes: int):
        super().__init__()
        self.scores = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in channels)

    def forward(self, feats: list[Tensor]) -> Tensor:
        out = self.scores[-1](feats[-1])
        for f, score in zip(reversed(feats[:-1]), reversed(list(self.scores[:-1]))):
            out = _up_to(out, f) + score(f)
        return out


class _UNetHead(nn.Module):
    """Deepest features upsampled to each shallower level, concatenated, two 3×3 convs."""

    def __init__(self, channels: list[int], num_classes: int, width: int, norm: str):
        super().__init__()
        blocks = []
        cin = channels[-1]
        for c in reversed(channels[:-1]):
            cout = max(width, c // 2)
            blocks.append(nn.Sequential(conv_norm_act(cin + c, cout, 3, norm=norm),
                                        conv_norm_act(cout, cout, 3, norm=norm)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = feats[-1]
        for f, block in zip(reversed(feats[:-1]), self.blocks):
            x = block(torch.cat([_up_to(x, f), f], 1))
        return self.classifier(x)


@GENERATORS.register("timm_fcn")
class TimmSegmentor(nn.Module):
    """timm backbone (``features_only``) + FCN-8s or U-Net decoder -> per-pixel logits.

    ::

        x∈[0,1] ─ normalise ─ backbone ─► f_s2 f_s4 f_s8 f_s16 f_s32
                                          fcn : score(f_s8,f_s16,f_s32), fused coarse→fine
                                          unet: up+cat+conv through every level
                               ─► 1×1 classifier ─ bilinear ↑ to (H, W) ─► logits (N, C, H, W)

    Args:
        num_classes: C, number of classes (the ignore label is not a class).
        backbone: any timm model name that supports ``features_only`` (``resnet18``,
            ``mobilenetv3_large_100``, ``convnext_tiny``, ...).
        pretrained: ``None`` = random init, or a **local** weight file of the whole timm
            model (``.safetensors`` or a torch file, read with ``weights_only=True``).
            Nothing is downloaded.
        decoder: ``fcn`` (FCN-8s fusion of the last three levels) or ``unet``.
        decoder_width: minimum channel count of the ``unet`` decoder's blocks.
        norm: normalisation in the ``unet`` decoder.

    Input (N, 3, H, W) in [0, 1]; output logits (N, C, H, W).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet18", pretrained: str | None = None,
                 decoder: Literal["fcn", "unet"] = "fcn", decoder_width: int = 32, norm: NormName = "batch"):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"must be >= 1, got {num_classes}", "num_classes")
        self.num_classes = num_classes
        self.normalize = _Normalize()
        self.backbone = _timm_features(backbone, pretrained)
        channels = list(self.backbone.feature_info.channels())
        if decoder == "fcn":
            # FCN-8s fuses strides 8, 16 and 32: the last three levels of the pyramid.
            self.decoder: nn.Module = _FCNHead(channels[-3:], num_classes)
            self._levels = 3
        elif decoder == "unet":
            self.decoder = _UNetHead(channels, num_classes, decoder_width, norm)
            self._levels = len(channels)
        else:
            raise ConfigError(f"expected 'fcn' or 'unet', got {decoder!r}", "decoder")

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x)
        feats = list(self.backbone(self.normalize(x)))[-self._levels:]
        return _up_to(self.decoder(feats), (x.shape[-2], x.shape[-1]))


# --- small from-scratch segmentor ---------------------------------------------------------
@GENERATORS.register("small_segmentor")
class SmallSegmentor(nn.Module):
    """A small U-Net-like encoder-decoder trained from scratch; CPU-sized.

    ::

        x∈[0,1] ─ norm ─ E0(w) ─────────────────────────────── cat ─ D0(w) ─ 1×1 ─► logits
                          └ pool ─ E1(2w) ──────────── cat ─ D1(2w) ┘
                                    └ pool ─ E2(4w) ─ [dilated ctx] ┘ (depth = 3)

    ``E``/``D`` are two 3×3 conv-norm-ReLU layers; the deepest level adds two dilated
    3×3 convs (dilation 2, 4) to widen the receptive field cheaply, in the spirit of
    DeepLab's LargeFOV (Chen et al., ICLR 2015), the segmentor of the paper's VOC runs.
    Upsampling is bilinear to the skip's exact size, so odd H, W work.

    Args:
        num_classes: C.
        width: channels of the first level (doubled at each level down).
        depth: number of resolution levels (>= 1); the deepest is at 1/2^(depth-1).
        norm: ``batch``, ``instance`` or ``none``.

    Input (N, 3, H, W) in [0, 1]; output logits (N, C, H, W).
    """

    def __init__(self, num_classes: int, width: int = 32, depth: int = 3, norm: NormName = "batch"):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"must be >= 1, got {num_classes}", "num_classes")
        if width < 1:
            raise ConfigError(f"must be >= 1, got {width}", "width")
        if depth < 1:
            raise ConfigError(f"must be >= 1, got {depth}", "depth")
        self.num_classes = num_classes
        self.normalize = _Normalize()
        chans = [width * 2**i for i in range(depth)]

        def double(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv_norm_act(cin, cout, 3, norm=norm), conv_norm_act(cout, cout, 3, norm=norm))

        self.encoders = nn.ModuleList(double(cin, cout) for cin, cout in zip([3] + chans[:-1], chans))
        deep = chans[-1]
        self.context = nn.Sequential(
            nn.Conv2d(deep, deep, 3, padding=2, dilation=2, bias=norm == "none"),
            norm_layer(norm, deep), nn.ReLU(inplace=True),
            nn.Conv2d(deep, deep, 3, padding=4, dilation=4, bias=norm == "none"),
            norm_layer(norm, deep), nn.ReLU(inplace=True),
        )
        self.decoders = nn.ModuleList(double(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth - 1)))
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x)
        h = self.normalize(x)
        skips = []
        for i, enc in enumerate(self.encoders):
            if i > 0:
                # ceil_mode keeps the last row/column of odd sizes instead of dropping it.
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = enc(h)
            skips.append(h)
        h = h + self.context(h)  # residual: the context branch refines, never replaces
        for dec, skip in zip(self.decoders, reversed(skips[:-1])):
            h = dec(torch.cat([_up_to(h, skip), skip], 1))
        return self.classifier(h)
