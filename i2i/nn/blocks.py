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
