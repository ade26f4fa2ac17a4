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

Speed: the tail (a 9×9 convolution to 3 channels at full output resolution) is the
single most expensive layer in practice although it has 11 % of the FLOPs — oneDNN's
convolution kernels compute output channels in blocks of 16, so with 3 outputs most of
each block is wasted (measured: 0.91 s of a 3.05 s fp32 forward at 256² LR, ×4). The
forward therefore computes ``tail(PReLU(PixelShuffle_r(conv(h))))`` in the
*sub-pixel domain*: the same convolution rewritten as a (2P+1)² convolution from the
C·r² channels before the last shuffle to out·r² channels, followed by one cheap shuffle
(:func:`subpixel_conv_weight`). Same function, same parameters and state dict; it skips
the large shuffle and gives oneDNN 4× wider outputs (0.34 s for that layer). Set
``model.fuse_tail = False`` for the literal layer order (tests compare the two).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from .blocks import act_layer, conv_norm_act

__all__ = ["SRResNet", "ResidualBlock", "count_parameters", "srresnet_x2", "srresnet_x3", "srresnet_x4",
           "srresnet_x8", "init_as_interpolator", "interpolation_taps"]

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


def subpixel_conv_weight(weight: Tensor, r: int) -> tuple[Tensor, int]:
    """Rewrite a stride-1 ``k×k`` convolution on a PixelShuffle(r) output as one on its input.

    With ``y = pixel_shuffle(x, r)`` (x: C·r² channels at h×w, y: C channels at rh×rw) and
    a convolution ``conv(y; W, padding=k//2)`` with W of shape (O, C, k, k), this returns
    (W', P) such that ``pixel_shuffle(conv(x; W', padding=P), r)`` is the same tensor. W'
    has shape (O·r², C·r², 2P+1, 2P+1) with P = ⌊(r − 1 + k//2) / r⌋. Output channel
    ``o·r² + a_y·r + a_x`` computes output pixel phase (a_y, a_x) of channel o; it reads
    input channel ``c·r² + b_y·r + b_x`` at offset q through tap
    ``W[o, c, r·q_y + b_y − a_y + k//2, r·q_x + b_x − a_x + k//2]`` (zero where that falls
    outside the k×k kernel). Zero padding matches, since padding y by k//2 zeros is
    padding x by P zero pixels as far as any valid tap can reach. Differentiable in W.
    """
    o, c, k, k2 = weight.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"subpixel_conv_weight: need an odd square kernel, got {k}×{k2}")
    h = k // 2
    p = (r - 1 + h) // r
    q = torch.arange(-p, p + 1, device=weight.device)
    a = torch.arange(r, device=weight.device)
    tap = r * q.view(1, 1, -1) + a.view(1, r, 1) - a.view(r, 1, 1) + h  # [a, b, q]
    tap = torch.where((tap >= 0) & (tap < k), tap, torch.full_like(tap, k))  # k: the zero tap added below
    kk = 2 * p + 1
    iy = tap.view(r, 1, r, 1, kk, 1)  # [a_y, ·, b_y, ·, q_y, ·]
    ix = tap.view(1, r, 1, r, 1, kk)  # [·, a_x, ·, b_x, ·, q_x]
    padded = F.pad(weight, (0, 1, 0, 1))  # (O, C, k+1, k+1): row and column k are zero
    w = padded[:, :, iy, ix]  # (O, C, a_y, a_x, b_y, b_x, q_y, q_x)
    w = w.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(o * r * r, c * r * r, kk, kk)
    return w, p


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
        # tail in the sub-pixel domain (module docstring). It computes more multiply-adds than
        # the 9×9 layer (zero taps: 1.23× for ×2 stages, 2.8× for ×3) but runs faster on both:
        # measured fp32, 64 ch, 256² LR: ×2 stage 0.87 → 0.26 s, ×3 0.48 → 0.28 s
        self.fuse_tail = True

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SRResNet expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        feat = self.head(x)
        # the long skip lets the body learn only the high-frequency residual
        feat = feat + self.body(feat)
        if not (self.fuse_tail and isinstance(self.upsample[-2], nn.PixelShuffle)):
            return self.tail(self.upsample(feat))
        *stages, conv, shuffle, act = self.upsample
        for layer in stages:
            feat = layer(feat)
        y = conv(feat)
        r = shuffle.upscale_factor
        # PReLU's slope of channel c applies to channels c·r² … c·r² + r² − 1 before the shuffle
        y = F.prelu(y, act.weight.repeat_interleave(r * r) if act.weight.numel() > 1 else act.weight)
        w, p = subpixel_conv_weight(self.tail.weight, r)
        bias = self.tail.bias.repeat_interleave(r * r) if self.tail.bias is not None else None
        return F.pixel_shuffle(F.conv2d(y, w, bias, padding=p), r)

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


# --- a warm start for short SRResNet training runs -----------------------------------------
def interpolation_taps(scale: int, taps: int = 9) -> np.ndarray:
    """1-D kernel k (``taps`` long) such that nearest ×scale followed by k ≈ MATLAB bicubic ×scale.

    Least squares on random 1-D signals against :func:`i2i.data.resize.imresize`, away from
    the borders. Nearest ×s is box_s convolved with a pulse train, so box_s * k is the
    effective interpolation kernel; 9 taps at ×4 give a 12-tap kernel, close to bicubic's 16.
    """
    from ..data.resize import imresize  # MATLAB bicubic: the kernel to imitate

    rng = np.random.default_rng(0)
    n, pad = 64, taps // 2
    rows, target = [], []
    for _ in range(32):
        x = np.cumsum(rng.normal(size=n)).astype(np.float32)  # a random walk: image-like spectrum
        big = imresize(torch.from_numpy(x)[None, None, None], scale=(1.0, float(scale)))[0, 0, 0].numpy()
        near = np.repeat(x, scale)
        for i in range(4 * scale, n * scale - 4 * scale):
            rows.append(near[i - pad:i + pad + 1][::-1])
            target.append(big[i])
    k, *_ = np.linalg.lstsq(np.asarray(rows, np.float64), np.asarray(target, np.float64), rcond=None)
    return k.astype(np.float32)


@torch.no_grad()
def init_as_interpolator(net: nn.Module, damp: float = 0.1) -> nn.Module:
    """Set an SRResNet (``i2i.nn.srresnet``) so that, untrained, it outputs ≈ bicubic ×scale.

    The RGB input rides through channel k = 0..2 of every stage: the head conv copies it
    (centre tap 1; PReLU is the identity on inputs ≥ 0), the body's last BN has γ = β = 0 so
    the long skip adds nothing (zero-init residual, as in Goyal et al. 2017), each upsampler
    conv copies channel k to all r² sub-pixel channels of k (PixelShuffle then makes a
    nearest-neighbour ×r), and the tail's 9×9 filter is the separable
    :func:`interpolation_taps` kernel. Every other weight keeps its random init times
    ``damp``, so gradients reach all of them (an all-zero block would never train).
    Training then starts at bicubic quality and only learns the residual detail, which is
    what makes a short CPU run beat bicubic; the architecture and its config are unchanged.
    """
    head = net.head[0]
    c = net.in_channels
    if c != 3 or net.out_channels != 3 or not isinstance(head, nn.Conv2d):
        raise ValueError("init_as_interpolator expects an RGB -> RGB SRResNet")
    kh = head.kernel_size[0] // 2
    head.weight.mul_(damp)
    head.bias.mul_(damp)
    for k in range(c):
        head.weight[k].zero_()
        head.weight[k, k, kh, kh] = 1.0
        head.bias[k] = 0.0
    last = net.body[-1]
    bn = [m for m in last.modules() if isinstance(m, nn.BatchNorm2d)]
    conv = [m for m in last.modules() if isinstance(m, nn.Conv2d)][0]
    if bn:
        bn[0].weight.zero_()
        bn[0].bias.zero_()
    else:
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
    mods = list(net.upsample)
    scale = 1
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            r = next(s for s in mods[i + 1:] if isinstance(s, nn.PixelShuffle)).upscale_factor
            scale *= r
            m.weight.mul_(damp)
            m.bias.mul_(damp)
            for k in range(c):
                for j in range(r * r):
                    m.weight[k * r * r + j].zero_()
                    m.weight[k * r * r + j, k, 1, 1] = 1.0
                    m.bias[k * r * r + j] = 0.0
    tail = net.tail
    taps = tail.kernel_size[0]
    k1 = torch.from_numpy(interpolation_taps(scale, taps))
    tail.weight.mul_(damp)
    tail.bias.zero_()
    for k in range(c):
        tail.weight[k, :c].zero_()
        tail.weight[k, k] = torch.outer(k1, k1)
    return net
