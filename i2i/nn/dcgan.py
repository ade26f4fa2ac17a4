"""DCGAN networks for 28×28 digits (Radford, Metz & Chintala, 2016, §3 "approach").

The paper's guidelines: strided convolutions instead of pooling (fractionally-strided in
G), batch norm in both nets except G's output and D's input layer, ReLU in G with Tanh at
the output, LeakyReLU(0.2) in D, no fully-connected hidden layers (the first layer of G is
a projection of z reshaped to a 7×7 map). 28 = 7·2·2, so G has two ×2 up-sampling stages.

Conditioning:

* G: ``num_classes > 0`` -> a learned label embedding is concatenated to z (Mirza &
  Osindero 2014; Odena et al. 2017 for ACGAN), or, with ``cond: multiply``, multiplies z
  element-wise (embedding size = z_dim). Multiplying keeps z in every input unit, which
  makes it harder for a class-conditional G to ignore the noise and collapse to one image
  per class (the ACGAN failure of Shu et al. 2017).
* D: ``num_classes > 0`` -> the embedding is projected to a 28×28 plane and concatenated
  as an extra input channel (CGAN). ``aux_classes > 0`` -> an auxiliary classification
  head beside the real/fake head (ACGAN, Odena et al., "Conditional Image Synthesis with
  Auxiliary Classifier GANs", 2017, §3).

::

    G:  z ─┬─ Linear ─ 2c×7×7 ─ BN ReLU ─ ConvT4/2 ─ c×14×14 ─ BN ReLU ─ ConvT4/2 ─ Tanh ─ 1×28×28
        y ─┘ (embedding)
    D:  x [+ y plane] ─ Conv4/2 ─ LReLU ─ c×14×14 ─ Conv4/2 ─ BN LReLU ─ 2c×7×7 ─┬─ Linear ─ real/fake logit
                                                                                └─ Linear ─ class logits (ACGAN)
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..registry import DISCRIMINATORS, GENERATORS
from .blocks import init_weights


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    """z (N, z_dim) [+ y (N,)] -> images (N, channels, 28, 28) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, base_channels: int = 64, channels: int = 1, num_classes: int = 0,
                 embed_dim: int = 50, cond: Literal["concat", "multiply"] = "concat"):
        super().__init__()
        self.z_dim, self.num_classes, self.cond = z_dim, num_classes, cond
        c = base_channels
        if cond == "multiply":
            embed_dim = z_dim
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        in_dim = z_dim + (embed_dim if num_classes > 0 and cond == "concat" else 0)
        self.project = nn.Sequential(nn.Linear(in_dim, 2 * c * 7 * 7, bias=False))
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh(),
        )
        self._c = c
        init_weights(self, "normal")  # Radford et al. §4: N(0, 0.02), BN scale N(1, 0.02)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass labels y")
            z = z * self.embed(y) if self.cond == "multiply" else torch.cat([z, self.embed(y)], dim=1)
        return self.net(self.project(z).view(-1, 2 * self._c, 7, 7))


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """images (N, C, 28, 28) [+ y] -> logits (N,); with ``aux_classes`` also (N, aux_classes)."""

    def __init__(self, base_channels: int = 64, channels: int = 1, num_classes: int = 0, aux_classes: int = 0,
                 embed_dim: int = 50, dropout: float = 0.0):
        super().__init__()
        c = base_channels
        self.num_classes = num_classes
        self.embed = nn.Sequential(nn.Embedding(num_classes, embed_dim), nn.Linear(embed_dim, 28 * 28)) if num_classes > 0 else None
        cin = channels + (1 if num_classes > 0 else 0)
        self.features = nn.Sequential(
            nn.Conv2d(cin, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(dropout),
            nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout2d(dropout), nn.Flatten(),
        )
        self.adv = nn.Linear(2 * c * 7 * 7, 1)
        self.aux = nn.Linear(2 * c * 7 * 7, aux_classes) if aux_classes > 0 else None
        init_weights(self, "normal")  # Radford et al. §4: N(0, 0.02), BN scale N(1, 0.02)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass labels y")
            x = torch.cat([x, self.embed(y).view(-1, 1, 28, 28)], dim=1)
        h = self.features(x)
        logit = self.adv(h).squeeze(1)
        return (logit, self.aux(h)) if self.aux is not None else logit
