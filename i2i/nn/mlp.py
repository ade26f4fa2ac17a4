"""Fully-connected GAN networks for 28×28 digits.

Goodfellow et al., "Generative Adversarial Nets", 2014 (MNIST with MLPs), and Mirza &
Osindero, "Conditional Generative Adversarial Nets", 2014 (y fed to both nets). ReLU-family
hidden layers replace the paper's maxout units (Goodfellow et al. §5), as in most
re-implementations; dropout in D is the paper's.

Conditioning (``num_classes > 0``): a learned label embedding is concatenated to z (G) or to
the flattened image (D).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import DISCRIMINATORS, GENERATORS


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
    """z (N, z_dim) [+ y (N,)] -> images (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, hidden: list[int] = [256, 512, 1024], image_size: int = 28,  # noqa: B006
                 channels: int = 1, num_classes: int = 0, embed_dim: int = 10, batch_norm: bool = True):
        super().__init__()
        self.z_dim, self.num_classes, self.channels, self.image_size = z_dim, num_classes, channels, image_size
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        layers: list[nn.Module] = []
        width = z_dim + (embed_dim if num_classes > 0 else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        layers += [nn.Linear(width, channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass labels y")
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
    """images (N, C, H, W) [+ y] -> logits (N,); with ``aux_classes`` also class logits (N, K)."""

    def __init__(self, hidden: list[int] = [512, 256], image_size: int = 28, channels: int = 1,  # noqa: B006
                 num_classes: int = 0, embed_dim: int = 10, aux_classes: int = 0, dropout: float = 0.3):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        layers: list[nn.Module] = []
        width = channels * image_size * image_size + (embed_dim if num_classes > 0 else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout)]
            width = h
        self.features = nn.Sequential(*layers)
        self.adv = nn.Linear(width, 1)
        self.aux = nn.Linear(width, aux_classes) if aux_classes > 0 else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        h = x.flatten(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass labels y")
            h = torch.cat([h, self.embed(y)], dim=1)
        h = self.features(h)
        logit = self.adv(h).squeeze(1)
        return (logit, self.aux(h)) if self.aux is not None else logit
