"""Sampling the digit GANs (Goodfellow et al. 2014; Radford et al. 2016, DCGAN; Mirza &
Osindero 2014, cGAN; Odena et al. 2017, ACGAN), shared by the recipe (samples, evaluation)
and the inference pipeline, which must not import the recipe.

A generator is called ``G(z)`` (unconditional) or ``G(z, y)`` (conditional), z ~ N(0, I) of
shape (N, z_dim); a discriminator ``D(x)`` or ``D(x, y)`` returns logits (N,) or, with an
auxiliary class head (ACGAN), ``(logits (N,), class logits (N, C))``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["generate_digits", "discriminate", "rank_by_discriminator"]


def generate_digits(G: nn.Module, labels: Tensor, z_dim: int, conditional: bool, z: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Images (N, 1, 28, 28) in [-1, 1] for ``labels`` (N,) (ignored when not ``conditional``);
    ``z`` drawn from ``generator`` (CPU) when not given."""
    if z is None:
        z = torch.randn(len(labels), z_dim, generator=generator).to(labels.device)
    return G(z, labels) if conditional else G(z)


def discriminate(D: nn.Module, x: Tensor, y: Tensor | None, conditional: bool) -> tuple[Tensor, Tensor | None]:
    """(real/fake logits (N,), class logits (N, C) or None) of D on images ``x`` (labels ``y``)."""
    out = D(x, y) if conditional else D(x)
    return out if isinstance(out, tuple) else (out, None)


@torch.no_grad()
def rank_by_discriminator(G: nn.Module, D: nn.Module, labels: Tensor, k: int, z_dim: int, g_conditional: bool,
                          d_conditional: bool, generator: torch.Generator | None = None) -> Tensor:
    """Generate ``k`` candidates per requested label and keep the one D scores highest.

    Returns (len(labels), 1, 28, 28) in [-1, 1]. For ACGAN the score also requires the
    auxiliary head to agree with the requested label (log P(real) + log P(y|x)).
    """
    n = len(labels)
    cand_labels = labels.repeat_interleave(k)
    imgs = generate_digits(G, cand_labels, z_dim, g_conditional, generator=generator)
    adv, aux = discriminate(D, imgs, cand_labels, d_conditional)
    score = torch.nn.functional.logsigmoid(adv.float())
    if aux is not None:
        score = score + torch.log_softmax(aux.float(), 1).gather(1, cand_labels[:, None]).squeeze(1)
    best = score.view(n, k).argmax(1)
    return imgs.view(n, k, *imgs.shape[1:])[torch.arange(n), best]
