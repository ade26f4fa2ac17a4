"""BasicSR's MSRResNet and EDSR weight files, which spandrel (0.4.2) has no architecture for (issue 24).

``net_g_<iter>.pth`` / ``EDSR_Mx4_f64b16_DIV2K_official-*.pth`` / ``MSRResNet_x4-*.pth``: the state
dict (unwrapped like every foreign file) is recognised by its keys and loaded into i2i's own
:class:`~i2i.nn.msrresnet.MSRResNet` / :class:`~i2i.nn.msrresnet.EDSR`, whose keys are BasicSR's.
The hyper-parameters come from the tensors: width from ``conv_first``, blocks from ``body.N``, the
scale from the upsampling convolutions (MSRResNet: ``upconv2`` present -> ×4, else
``upconv1``'s s²·F outputs; EDSR: one ``upsample`` conv per ×2, or one of 9·F outputs for ×3).
EDSR's residual scaling is not in the file: 0.1 for 256 features (EDSR-L), else 1 (EDSR-M), as
BasicSR's released configs (``options/test/EDSR/test_EDSR_{L,M}x*.yml``) and Lim et al. 2017 §3.2.
"""
from __future__ import annotations

import math
import re

from torch import Tensor, nn

from .nn.msrresnet import EDSR, MSRResNet

__all__ = ["BASICSR_LICENCE", "basicsr_network"]

BASICSR_LICENCE = "Apache-2.0 (XPixelGroup/BasicSR)"

_BLOCK = re.compile(r"body\.(\d+)\.conv1\.weight")


def basicsr_network(sd: dict[str, Tensor]) -> tuple[nn.Module, str, dict[str, float]] | None:
    """``(network with the file's weights, architecture name, inferred settings)`` for a BasicSR
    MSRResNet or EDSR state dict; None for anything else. A state dict with these keys whose
    tensors do not fit raises ``RuntimeError`` from ``load_state_dict`` (the reader words it)."""
    needed = {"conv_first.weight", "conv_last.weight", "body.0.conv1.weight"}
    if not needed <= set(sd):
        return None
    width = int(sd["conv_first.weight"].shape[0])
    blocks = 1 + max(int(m[1]) for k in sd if (m := _BLOCK.fullmatch(k)))
    channels = {"in_channels": int(sd["conv_first.weight"].shape[1]), "out_channels": int(sd["conv_last.weight"].shape[0])}
    if "upconv1.weight" in sd and "conv_hr.weight" in sd:
        scale = 4 if "upconv2.weight" in sd else math.isqrt(int(sd["upconv1.weight"].shape[0]) // width)
        if scale not in (2, 3, 4):
            return None
        net: nn.Module = MSRResNet(scale=scale, width=width, num_blocks=blocks, **channels)
        arch, settings = "MSRResNet", {"scale": scale}
    elif "conv_after_body.weight" in sd and "upsample.0.weight" in sd:
        ups = sorted(int(k.split(".")[1]) for k in sd if re.fullmatch(r"upsample\.\d+\.weight", k))
        scale = 3 if int(sd["upsample.0.weight"].shape[0]) == 9 * width else 2 ** len(ups)
        res_scale = 0.1 if width >= 256 else 1.0
        net = EDSR(scale=scale, width=width, num_blocks=blocks, res_scale=res_scale, **channels)
        arch, settings = "EDSR", {"scale": scale, "res_scale": res_scale}
    else:
        return None
    net.load_state_dict(sd, strict=True)
    return net.eval(), arch, settings
