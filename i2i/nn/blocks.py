"""Small shared layers: norm/activation factories by name (timm style).

``norm`` and ``act`` arguments of every network accept a name from the tables below, so a
YAML recipe can say ``norm: instance`` or ``act: prelu``.
"""
from __future__ import annotations

from functools import partial
from typing import Literal

from torch import nn

NormName = Literal["batch", "instance", "none"]
ActName = Literal["relu", "leaky_relu", "prelu", "tanh", "sigmoid", "gelu", "silu", "none"]


def norm_layer(name: str, channels: int) -> nn.Module:
    """2-D normalisation by name. ``instance`` is affine-free as in pix2pix."""
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; expected batch, instance or none")


def act_layer(name: str, channels: int = 1, slope: float = 0.2) -> nn.Module:
    """Activation by name; ``prelu`` learns one slope per channel (SRResNet)."""
    table = {
        "relu": partial(nn.ReLU, inplace=True),
        "leaky_relu": partial(nn.LeakyReLU, slope, inplace=True),
        "prelu": partial(nn.PReLU, channels),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "silu": partial(nn.SiLU, inplace=True),
        "none": nn.Identity,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(table)}")
    return table[name]()


def conv_norm_act(cin: int, cout: int, k: int = 3, stride: int = 1, norm: str = "batch", act: str = "relu",
                  bias: bool | None = None, padding_mode: str = "zeros") -> nn.Sequential:
    """conv(k, stride, 'same'-style padding) -> norm -> act. Bias is dropped before a norm."""
    if bias is None:
        bias = norm == "none"
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias, padding_mode=padding_mode),
        norm_layer(norm, cout),
        act_layer(act, cout),
    )


Init = Literal["normal", "kaiming", "default"]


def init_weights(module: nn.Module, init: Init = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear/BN weights in place; returns ``module``.

    * ``normal`` — the released pix2pix/CycleGAN code's default (``init_type='normal'``,
      ``init_gain=0.02``) and DCGAN's (Radford et al. §4): weights N(0, 0.02), biases 0,
      batch-norm scale N(1, 0.02) and shift 0;
    * ``kaiming`` — He et al. 2015 (fan-in, for ReLU), biases 0, batch norm (1, 0);
    * ``default`` — PyTorch's own layer initialisation, left as it is.
    """
    if init not in ("normal", "kaiming", "default"):
        raise ValueError(f"init must be normal, kaiming or default, got {init!r}")
    if init == "default":
        return module
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            else:
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain) if init == "normal" else nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module

