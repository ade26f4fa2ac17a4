"""RRDBNet: the generator of ESRGAN and Real-ESRGAN.

Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCV
Workshops 2018 (arXiv:1809.00219), §3.1 and Fig. 4: the SRResNet body with batch norm
removed and each residual block replaced by a Residual-in-Residual Dense Block (RRDB);
residual scaling β = 0.2 and a smaller initialisation (MSRA ×0.1) make the deep body train
stably (§3.1, last paragraph). Wang et al., "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data", ICCVW 2021 (arXiv:2107.10833), §4.2 / Fig. 4:
the same network, with a pixel-unshuffle at the input for ×2 and ×1 so that the body always
runs at a quarter of the output resolution::

    LR (N, C_in, h, w)
      │ (×2: pixel-unshuffle 2 → 4·C_in ch; ×1: pixel-unshuffle 4 → 16·C_in ch)
      │ conv_first 3×3 → 64 ───────────────────────────────┐
      │ body: 23 × RRDB                                     │
      │ conv_body 3×3 ─ (+) ◄──────────────────────────────┘ long skip
      │ nearest ×2 ─ conv_up1 ─ LReLU 0.2
      │ nearest ×2 ─ conv_up2 ─ LReLU 0.2
      │ conv_hr ─ LReLU 0.2 ─ conv_last 3×3 → C_out
    SR (N, C_out, h·scale, w·scale)

    RRDB(x)  = x + β · RDB3(RDB2(RDB1(x)))
    RDB(x)   = x + β · conv5([x, x1, x2, x3, x4]),   x_k = LReLU(conv_k([x, x1, …, x_{k-1}]))
               (conv1..4: width + (k-1)·growth → growth; conv5: width + 4·growth → width)

State-dict keys follow BasicSR's / Real-ESRGAN's ``RRDBNet`` (``basicsr/archs/rrdbnet_arch.py``):
``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last`` (each ``.weight`` and ``.bias``), so their weight files
(``RealESRGAN_x4plus.pth``'s ``params_ema``) load with plain ``load_state_dict``. The original
ESRGAN repository's two earlier layouts (the ``nn.Sequential`` one of ``RRDB_ESRGAN_x4.pth``:
``model.0``, ``model.1.sub.N.RDBk.convj.0``, …; and its later ``RRDB_trunk`` / ``trunk_conv`` /
``HRconv`` one) are renamed to these keys by :func:`basicsr_keys`.

Initialisation: the dense-block convolutions get Kaiming-normal (fan-in, gain √2) weights
scaled by 0.1 and zero bias (ESRGAN §3.1, as BasicSR's ``default_init_weights(..., 0.1)``);
the other convolutions keep PyTorch's default, as in the peers' code.

Parameter count (×4, 64 channels, growth 32, 23 blocks): 16,697,987 (summed layer by layer in
tests/test_nn_rrdbnet.py).
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import GENERATORS
from ..tiling import StagePlan, rrdb_lean

__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock", "basicsr_keys"]

SCALES = (1, 2, 4)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3×3 convs with a β-scaled residual: (N, width, H, W) -> same shape."""

    def __init__(self, width: int = 64, growth: int = 32, residual_scale: float = 0.2):
        super().__init__()
        self.residual_scale = residual_scale
        self.conv1 = nn.Conv2d(width, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(width + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(width + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(width + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(width + 4 * growth, width, 3, 1, 1)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, scale: float = 0.1) -> None:
        """MSRA (Kaiming-normal, fan-in) init ×``scale``, zero bias (ESRGAN §3.1)."""
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.mul_(scale)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return x + self.residual_scale * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: x + β · RDB3(RDB2(RDB1(x))), (N, width, H, W) -> same shape."""

    def __init__(self, width: int = 64, growth: int = 32, residual_scale: float = 0.2):
        super().__init__()
        self.residual_scale = residual_scale
        self.rdb1 = ResidualDenseBlock(width, growth, residual_scale)
        self.rdb2 = ResidualDenseBlock(width, growth, residual_scale)
        self.rdb3 = ResidualDenseBlock(width, growth, residual_scale)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual_scale * self.rdb3(self.rdb2(self.rdb1(x)))

    @torch.no_grad()
    def lean(self, x: Tensor) -> Tensor:
        """:meth:`forward`'s values for inference, the dense blocks without their concatenations
        (:func:`i2i.tiling.rrdb_lean`): the staged body's stage. Channels-last inputs
        (``--fast``) run :meth:`forward`."""
        dense = tuple((tuple((lambda t, c=c: F.leaky_relu(c(t), 0.2)) for c in (r.conv1, r.conv2, r.conv3, r.conv4)),
                       r.conv5, r.residual_scale) for r in (self.rdb1, self.rdb2, self.rdb3))
        return rrdb_lean(x, dense, self.residual_scale, self)


@GENERATORS.register("rrdbnet")
class RRDBNet(nn.Module):
    """ESRGAN / Real-ESRGAN generator (Wang et al. 2018, Fig. 4; 2021, Fig. 4).

    Args:
        scale: upscaling factor: 4, or 2 / 1 through an input pixel-unshuffle (Real-ESRGAN).
        in_channels: image channels of the LR input (3 for RGB); the first conv sees
            4× (×2) or 16× (×1) as many after the unshuffle.
        out_channels: channels of the SR output.
        width: feature channels (64).
        num_blocks: RRDB blocks (23).
        growth: channels added by each dense-block conv (32).
        residual_scale: β on every dense and RRDB residual (0.2).

    Shapes: (N, in_channels, h, w) in [0, 1] -> (N, out_channels, h·scale, w·scale),
    unbounded (clamp to [0, 1] for images). For ×2 / ×1, h and w must be multiples of 2 / 4.
    """

    def __init__(self, scale: int = 4, in_channels: int = 3, out_channels: int = 3, width: int = 64,
                 num_blocks: int = 23, growth: int = 32, residual_scale: float = 0.2):
        super().__init__()
        if isinstance(scale, bool) or scale not in SCALES:
            raise ConfigError(f"must be one of {', '.join(map(str, SCALES))}, got {scale!r}", "scale")
        for key, value, least in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                  ("width", width, 1), ("num_blocks", num_blocks, 0), ("growth", growth, 1)):
            if value < least:
                raise ConfigError(f"must be >= {least}, got {value}", key)
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        # the body always runs at output/4: ×2 unshuffles by 2, ×1 by 4 (Real-ESRGAN §4.2)
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, width, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(width, growth, residual_scale) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_hr = nn.Conv2d(width, width, 3, 1, 1)
        self.conv_last = nn.Conv2d(width, out_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"RRDBNet expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        r = self.unshuffle
        if r > 1:
            if x.shape[-2] % r or x.shape[-1] % r:
                raise ValueError(f"RRDBNet ×{self.scale} needs H and W divisible by {r}, got {tuple(x.shape[-2:])}")
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        return self.upsample(feat + self.conv_body(self.body(feat)))

    def upsample(self, feat: Tensor) -> Tensor:
        """The ×4 tail on the trunk's features (after the long skip)."""
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

    def stage_plan(self) -> StagePlan | None:
        """The network in stages for staged exact tiling (:func:`i2i.tiling.run_staged`): ``conv_first``
        (radius 1), each RRDB (15 convolutions: radius 15), then ``conv_body`` + the long skip
        (``conv_first`` again, on the image) and the ×4 tail: 1 LR pixel + the tail's 2 (its convs at
        ×2 need 1 pixel there, its three at ×4 need 3 there: ceil((1 + ceil(3/2)) / 2)). None for ×2 / ×1
        (a pixel-unshuffled input: a tile's 2×2 groups would depend on where it starts)."""
        if self.unshuffle != 1:
            return None

        def tail(feats: Tensor, x: Tensor) -> Tensor:
            return self.upsample(self.conv_first(x) + self.conv_body(feats))

        return StagePlan(head=self.conv_first, blocks=tuple(b.lean for b in self.body), tail=tail, head_radius=1,
                         block_radius=15 if len(self.body) else 0, tail_radius=3, width=int(self.conv_first.out_channels))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Inference: forward clamped to the image range [0, 1]."""
        return self(x).clamp_(0.0, 1.0)


_OLD_DENSE = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
_OLD_BODY = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_TRUNK = {"RRDB_trunk.": "body.", "trunk_conv.": "conv_body.", "upconv1.": "conv_up1.", "upconv2.": "conv_up2.",
          "HRconv.": "conv_hr."}


def basicsr_keys(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """An ESRGAN state dict in either of the original ESRGAN repository's layouts renamed to BasicSR's
    (this module's) keys; any other state dict is returned as it is.

    - ``nn.Sequential`` layout (``RRDB_ESRGAN_x4.pth``, ESRGAN's ``architecture.py``): ``model.0`` ->
      ``conv_first``; ``model.1.sub.N.RDBk.convj.0`` -> ``body.N.rdbk.convj``; the last ``model.1.sub.B``
      -> ``conv_body``; then per ×2 upsampling (nearest, conv, LReLU: three entries) ``model.3``,
      ``model.6`` -> ``conv_up1``, ``conv_up2``; after n of them ``model.(3n+2)`` -> ``conv_hr`` and
      ``model.(3n+4)`` -> ``conv_last`` (×4: 8 and 10).
    - ``RRDB_trunk`` layout (ESRGAN's ``RRDBNet_arch.py``): ``RRDB_trunk.N.RDBk`` -> ``body.N.rdbk``,
      ``trunk_conv`` -> ``conv_body``, ``upconv1/2`` -> ``conv_up1/2``, ``HRconv`` -> ``conv_hr``.
    A file with a different number of upsamplings (×2, ×8 ESRGAN) gets ``conv_upN`` names this
    network does not have, so loading it reports them (missing / unexpected keys)."""
    if "model.0.weight" in sd and any(_OLD_DENSE.fullmatch(k) for k in sd):
        blocks = {int(m[1]) for k in sd if (m := _OLD_DENSE.fullmatch(k))}
        top = sorted({int(m[1]) for k in sd if (m := _OLD_TOP.fullmatch(k))})
        ups = [i for i in top if i >= 3 and i % 3 == 0]  # conv_hr (3n+2), conv_last (3n+4): not multiples of 3
        names = {0: "conv_first", **{i: f"conv_up{j + 1}" for j, i in enumerate(ups)}}
        n = len(ups)
        names.update({3 * n + 2: "conv_hr", 3 * n + 4: "conv_last"})
        out: dict[str, Tensor] = {}
        for k, v in sd.items():
            if m := _OLD_DENSE.fullmatch(k):
                out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
            elif (m := _OLD_BODY.fullmatch(k)) and int(m[1]) not in blocks:
                out[f"conv_body.{m[2]}"] = v
            elif (m := _OLD_TOP.fullmatch(k)) and int(m[1]) in names:
                out[f"{names[int(m[1])]}.{m[2]}"] = v
            else:
                out[k] = v  # left as it is: reported as unexpected when loaded
        return out
    if "RRDB_trunk.0.RDB1.conv1.weight" in sd:
        renamed = {}
        for k, v in sd.items():
            for old, new in _TRUNK.items():
                if k.startswith(old):
                    k = new + k[len(old):]
                    break
            renamed[k.replace(".RDB", ".rdb")] = v
        return renamed
    return sd
