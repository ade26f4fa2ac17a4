"""Digit generation pipeline (GAN / DCGAN / cGAN / ACGAN): class labels and a count in, images out.

    pipe = DigitsPipeline(load_model("runs/acgan_mnist"))
    imgs = pipe([7], num=16, seed=0)        # (16, 1, 28, 28) float in [0, 1]
    grid = image_grid(imgs, nrow=4)         # (H, W, 3) uint8, white 2-pixel gaps

``rank_by_discriminator=K`` generates K candidates per image and keeps the one the discriminator scores
highest (:func:`i2i.nn.sampling.rank_by_discriminator`; the model must be loaded with
``with_discriminator=True``). Unconditional models (GAN, DCGAN) take no labels. The latent
size, the class count and who takes labels come from the model card (:class:`i2i.card.Latent`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..inference import LoadedModel
from ..nn.sampling import generate_digits
from ..nn.sampling import rank_by_discriminator as best_of

__all__ = ["DigitsPipeline", "image_grid"]


class DigitsPipeline:
    """Generate digits with a loaded digit GAN.

    Attributes:
        conditional: whether the generator takes a class label.
        num_classes: labels are in ``range(num_classes)``.
    """

    def __init__(self, model: LoadedModel):
        latent = model.card.latent
        if latent is None:
            raise ConfigError(f"{model.path}: the model card has no latent (not a digit GAN?)", "checkpoint")
        self.model, self.latent = model, latent
        self.conditional = latent.conditional
        self.num_classes = int(latent.num_classes)

    @torch.no_grad()
    def __call__(self, labels: int | Sequence[int] | None = None, num: int = 1, seed: int = 0,
                 rank_by_discriminator: int = 0) -> Tensor:
        """``num`` images per label, label by label: (len(labels)·num, C, H, W) float32 in [0, 1], CPU.

        ``labels``: one or several class ids (None = every class; unconditional models: None only).
        ``seed`` fixes the noise (a CPU ``torch.Generator``); ``rank_by_discriminator`` = K > 0:
        the best of K candidates by the discriminator.
        """
        if num < 1:
            raise ConfigError(f"must be >= 1, got {num}", "num")
        if not self.conditional and labels is not None:
            raise ConfigError("this model is unconditional (a GAN/DCGAN): give no labels", "labels")
        ids = [0] if not self.conditional else list(range(self.num_classes)) if labels is None else (
            [labels] if isinstance(labels, int) else list(labels))
        bad = [y for y in ids if not 0 <= int(y) < self.num_classes]
        if bad:
            raise ConfigError(f"expected class labels in 0..{self.num_classes - 1}, got {bad}", "labels")
        G = self.model.generator
        g = torch.Generator().manual_seed(seed)
        y = torch.tensor(ids).repeat_interleave(num).to(next(G.parameters()).device)
        if rank_by_discriminator:
            if self.model.discriminator is None:
                raise ConfigError("the checkpoint has no discriminator to rank with", "rank_by_discriminator")
            imgs = best_of(G, self.model.discriminator, y, rank_by_discriminator, self.latent.z_dim,
                          self.conditional, self.latent.d_conditional, g)
        else:
            imgs = generate_digits(G, y, self.latent.z_dim, self.conditional, generator=g)
        return imgs.add(1).div(2).clamp(0, 1).cpu()


def image_grid(images: Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H', W', 3) uint8 grid, ``nrow`` images per row.

    ``torchvision.utils.make_grid`` with the 8-bit rounding of ``torchvision.utils.save_image``
    (x·255 + 0.5, truncated), so a grid written with :func:`i2i.data.io.save_image` has the
    pixels torchvision's writer gave.
    """
    import torchvision

    grid = torchvision.utils.make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
