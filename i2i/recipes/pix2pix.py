"""pix2pix: conditional GAN + L1 for paired image-to-image translation.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017, eqs. 1-4:

    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_{x}[log(1 - D(x, G(x)))]         (eq. 1)
    L_L1(G)      = E_{x,y}[‖y - G(x)‖₁]                                       (eq. 3)
    G*           = arg min_G max_D L_cGAN(G, D) + λ L_L1(G),   λ = 100         (eq. 4)

with x = A (the condition, e.g. a sketch) and y = B (the target photo). D sees the pair
concatenated along channels (``conditional: true``) or, for the unconditional variant of
the paper's Table 1, the image alone. Training details (§3.3): G maximises log D(x, G(x))
(the non-saturating game), D's loss is divided by 2 (``losses.adversarial.d_weight: 0.5``),
Adam lr 2e-4, β = (0.5, 0.999), batch 1. Setting ``losses.adversarial.weight: 0`` gives the
paper's L1-only baseline through the same code (the engine still steps D, harmlessly).

Batches: ``{"A": (N, C_A, H, W), "B": (N, C_B, H, W)}``, both in [-1, 1]
(:mod:`i2i.data.paired`). Loss slots: ``adversarial`` (:class:`~i2i.losses.adversarial.
AdversarialLoss`) and ``pixel`` (``l1`` with ``weight`` = λ).

Evaluation: per-image L1 (in [-1, 1] units, i.e. the unweighted training term), PSNR and
SSIM on 8-bit-quantised [0, 1] images (:mod:`i2i.metrics.image`), and a sharpness ratio
mean((∇²fake)²) / mean((∇²B)²): blurry outputs, the failure mode of L1 alone (paper Fig. 4),
score below 1.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..tiling import pad_predict  # noqa: F401  (moved to the foundation: the pipelines share it)
from ..registry import RECIPES
from .base import Batch, GeneratorRecipe, Logs

__all__ = ["Pix2Pix", "pad_predict", "laplacian_energy", "image_metrics"]


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian_energy(x: Tensor) -> Tensor:
    """Mean squared 4-neighbour Laplacian per image: (N, C, H, W) -> (N,). A sharpness proxy.

    kornia filters each channel; the stencil is the 4-neighbour one because
    ``kornia.filters.laplacian`` is the 8-neighbour stencil, which would change the published
    sharpness figures (docs/pix2pix.md). Valid filtering: no padding artefacts.
    """
    from kornia.filters import filter2d

    return filter2d(x, _LAPLACIAN.to(x)[None], padding="valid").square().flatten(1).mean(1)


@torch.no_grad()
def image_metrics(fake: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-image quality of a translation against its ground truth.

    Args:
        fake, target: (N, C, H, W) in [-1, 1] (the generator's range), same shape.
    Returns:
        ``{"l1", "psnr", "ssim", "sharpness"}``, each (N,) float32:

        * ``l1``: mean |fake - target| in [-1, 1] units (the unweighted training term), in [0, 2];
        * ``psnr`` (dB) and ``ssim`` on 8-bit-quantised [0, 1] images (:mod:`i2i.metrics.image`);
        * ``sharpness``: mean squared Laplacian of fake / of target (:func:`laplacian_energy`);
          1 = as much high-frequency energy as the real image, < 1 = blurrier.
    """
    from ..metrics.image import psnr, ssim

    if fake.shape != target.shape:
        raise ValueError(f"fake and target shapes differ: {tuple(fake.shape)} vs {tuple(target.shape)}")
    fake, target = fake.float(), target.float()
    f01, t01 = fake.add(1).div(2).clamp(0, 1), target.add(1).div(2).clamp(0, 1)
    return {
        "l1": (fake - target).abs().flatten(1).mean(1),
        "psnr": psnr(f01, t01).float(),
        "ssim": ssim(f01, t01).float(),
        # eps keeps a flat target from dividing by zero; a ratio per image, averaged later
        "sharpness": laplacian_energy(f01) / laplacian_energy(t01).clamp_min(1e-12),
    }


@RECIPES.register("pix2pix")
class Pix2Pix(GeneratorRecipe):
    """A -> B translation with a (conditional) PatchGAN and λ·L1 (see module docstring).

    Args:
        losses: ``{"adversarial": AdversarialLoss, "pixel": L1}`` (built from ``losses:``).
        conditional: D sees ``cat(A, image)`` (True, the paper's cGAN) or the image only.
        multiple: size multiple for padded inference; ``null`` = read the generator's
            ``multiple`` attribute in :meth:`setup` (2**num_downs for the U-Net).
    """

    loss_slots = ("adversarial", "pixel")
    required_losses = ("adversarial", "pixel")
    grid_nrow = 3  # samples(): one [A | fake | B] triple per row

    def __init__(self, losses: dict[str, nn.Module], conditional: bool = True, multiple: int | None = None):
        super().__init__(losses)
        for slot in self.required_losses:
            if slot not in self.losses:
                raise ConfigError("required by recipe 'pix2pix'", f"losses.{slot}")
        if multiple is not None and multiple < 1:
            raise ConfigError(f"must be >= 1, got {multiple}", "multiple")
        self.conditional = conditional
        self.multiple = multiple or 1
        self._multiple_given = multiple is not None
        self.channels: dict[str, int] = {}

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Read G's size multiple and check D's input channels against G's (best effort)."""
        G, D = models["generator"], models.get("discriminator")
        self.check_adversary(D)
        if not self._multiple_given:
            self.multiple = int(getattr(G, "multiple", 1))
        convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        if not convs:
            return
        c_in, c_out = convs[0].in_channels, convs[-1].out_channels
        self.channels = {"in_channels": c_in, "out_channels": c_out}
        d_convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)] if D is not None else []
        if d_convs:
            want = c_in + c_out if self.conditional else c_out
            got = d_convs[0].in_channels
            if got != want:
                what = f"condition {c_in} + image {c_out}" if self.conditional else f"image {c_out} (unconditional)"
                raise ConfigError(f"pix2pix's D sees {what} = {want} channels, got {got}",
                                  "models.discriminator.in_channels")

    def _d_input(self, a: Tensor, image: Tensor) -> Tensor:
        return torch.cat([a, image], 1) if self.conditional else image

    # --- training -------------------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> dict[str, Tensor]:  # type: ignore[override]
        return {"fake": G(batch["A"])}

    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        a, b = batch["A"], batch["B"]
        # D sees concat(condition, image); d_weight (0.5 in the paper) is inside the wrapper
        return self.losses["adversarial"].discriminator_terms(D, self._d_input(a, b), self._d_input(a, out["fake"].detach()))

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        adv, pixel = self.losses["adversarial"], self.losses["pixel"]
        fake = out["fake"]
        if D is None or adv.weight == 0:  # L1-only baseline: D's opinion would be multiplied by 0
            g_adv = fake.new_zeros((), dtype=torch.float32)
        else:
            g_adv = adv.g_loss(D(self._d_input(batch["A"], fake)))
        g_l1 = pixel(fake, batch["B"])  # already × λ
        loss = g_adv + g_l1
        return loss, {"g/adv": g_adv.detach(), "g/l1": g_l1.detach(), "g/total": loss.detach()}

    # --- monitoring -----------------------------------------------------------------
    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> Tensor:
        """(3N, C, H, W) in [0, 1]: A, G(A), B for each item (grid rows of 3)."""
        a, b = batch["A"], batch["B"]
        fake = pad_predict(G, a, self.multiple)
        c = max(a.shape[1], fake.shape[1], b.shape[1])
        imgs = [x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x for x in (a, fake, b)]
        return torch.stack(imgs, 1).flatten(0, 1).float().add(1).div(2).clamp(0, 1)

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """Mean over all validation images (gathered across processes) of l1, psnr, ssim, sharpness."""
        per_image: dict[str, list[Tensor]] = {"l1": [], "psnr": [], "ssim": [], "sharpness": []}
        for batch in batches:
            fake = pad_predict(G, batch["A"], self.multiple)
            for k, v in image_metrics(fake, batch["B"]).items():
                per_image[k].append(accelerator.gather_for_metrics(v.contiguous()))
        if not per_image["l1"]:
            return {}
        return {k: torch.cat(v).float().mean().item() for k, v in per_image.items()}

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """Inference facts: images in [-1, 1]; pad H, W to ``multiple`` (see :func:`pad_predict`)."""
        return {"value_range": [-1, 1], "multiple": self.multiple, "conditional": self.conditional,
                "input": "A", "output": "B", **self.channels}
