"""Single-image super-resolution: SRResNet (pixel loss) and SRGAN (content + adversarial).

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (arXiv:1609.04802):

* SRResNet (§3.2, "SRResNet-MSE"): G minimises the pixel-wise MSE (eq. 4)
  ``l_MSE = 1/(r²WH) Σ (I_HR - G(I_LR))²``; no discriminator.
* SRGAN (eq. 3): G minimises the perceptual loss ``l_SR = l_X + 10⁻³ l_Gen`` with the VGG
  content loss ``l_X = l_VGG/5,4`` (eq. 5, features scaled by 1/12.75) and the
  adversarial term ``l_Gen = Σ -log D(G(I_LR))`` (eq. 6, the non-saturating game); D is
  trained on real HR vs ``G(I_LR)`` (eq. 2). G starts from the trained SRResNet (§3.2).

One recipe covers both: every present loss slot is added (``pixel``, ``content``,
``adversarial``), each already weighted by its λ from the YAML, each logged on its own.
A discriminator in ``models`` requires ``losses.adversarial`` and vice versa.

Batches: ``{"lr": (N, 3, h, w), "hr": (N, 3, h·s, w·s)}`` in [0, 1]
(:mod:`i2i.data.super_resolution`). G's output is unbounded during training (the loss
sees it as is) and clamped to [0, 1] for samples and metrics.

Evaluation follows the SR convention (:mod:`i2i.metrics.image`): PSNR/SSIM on 8-bit
quantised images, ``crop_border = scale`` pixels removed, on RGB and on BT.601 luma Y;
the same numbers are reported for the MATLAB-bicubic upscaling of the LR input
(``bicubic/...``), the baseline every SR table starts from.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data.resize import imresize
from ..errors import ConfigError
from ..registry import DISCRIMINATORS, GENERATORS, RECIPES, Registry
from .base import Batch, GeneratorRecipe, Logs

__all__ = ["SuperResolution", "bicubic_upscale"]


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """MATLAB-bicubic ×scale of (N, C, h, w) in [0, 1] -> (N, C, h·scale, w·scale), clamped."""
    return imresize(lr.float(), scale=float(scale)).clamp_(0.0, 1.0)


@RECIPES.register("sr")
class SuperResolution(GeneratorRecipe):
    """SRResNet / SRGAN objective (see the module docstring).

    Args:
        losses: any of ``pixel`` (e.g. ``mse``), ``content`` (``perceptual``) and
            ``adversarial`` (:class:`~i2i.losses.adversarial.AdversarialLoss`), built from
            the YAML's ``losses:``.
        scale: upscaling factor; must match the generator's and the data's ``scale``.
        eval_tile: run G tile by tile (:func:`i2i.tiling.tiled_apply`) on validation
            images larger than this many LR pixels per side; ``null`` = whole images.
        eval_tile_overlap: context around each tile, in LR pixels.
    """

    model_slots: ClassVar[dict[str, Registry]] = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
    optional_models = ("discriminator",)
    loss_slots = ("pixel", "content", "adversarial")
    grid_nrow = 3  # samples(): one [bicubic | SR | HR] triple per row
    passes_real_logits = True  # the relativistic objective (ESRGAN) gets D(hr) in the generator loss

    def __init__(self, losses: dict[str, nn.Module], scale: int = 4, eval_tile: int | None = None,
                 eval_tile_overlap: int = 32):
        super().__init__(losses)
        if isinstance(scale, bool) or scale < 1:
            raise ConfigError(f"must be an integer >= 1, got {scale!r}", "scale")
        if not any(k in self.losses for k in self.loss_slots):
            raise ConfigError("give at least one of pixel, content, adversarial (SRResNet: pixel: {type: mse})",
                              "losses")
        if eval_tile is not None and eval_tile < 1:
            raise ConfigError(f"must be >= 1, got {eval_tile}", "eval_tile")
        if eval_tile_overlap < 0:
            raise ConfigError(f"must be >= 0, got {eval_tile_overlap}", "eval_tile_overlap")
        self.scale = int(scale)
        self.eval_tile = eval_tile
        self.eval_tile_overlap = eval_tile_overlap

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Check that G, D, losses and data agree (scale, adversarial slot)."""
        self.check_adversary(models.get("discriminator"))
        g_scale = getattr(models["generator"], "scale", None)
        if g_scale is not None and g_scale != self.scale:
            raise ConfigError(f"generator upscales ×{g_scale} but recipe.scale is {self.scale}",
                              "models.generator.scale")
        has_d, has_adv = models.get("discriminator") is not None, "adversarial" in self.losses
        if has_d and not has_adv:
            raise ConfigError("a discriminator needs an adversarial loss, e.g. {type: adversarial, weight: 1.0e-3}",
                              "losses.adversarial")
        if has_adv and not has_d:
            raise ConfigError("losses.adversarial needs a discriminator (e.g. {type: srgan_vgg})",
                              "models.discriminator")
        d_scale = getattr(train_dataset, "scale", None)
        if d_scale is not None and d_scale != self.scale:
            raise ConfigError(f"data makes ×{d_scale} pairs but recipe.scale is {self.scale}", "data.scale")

    # --- training -------------------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> dict[str, Tensor]:  # type: ignore[override]
        """{"fake": G(lr)}: (N, 3, h·s, w·s), unclamped."""
        return {"fake": G(batch["lr"])}

    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        return self.losses["adversarial"].discriminator_terms(D, batch["hr"], out["fake"].detach())

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        fake, hr = out["fake"], batch["hr"]
        terms: dict[str, Tensor] = {}
        if "pixel" in self.losses:
            terms["g/pixel"] = self.losses["pixel"](fake, hr)
        if "content" in self.losses:
            terms["g/content"] = self.losses["content"](fake, hr)
        if "adversarial" in self.losses and D is not None:
            adv = self.losses["adversarial"]
            # ESRGAN's relativistic G loss also needs D(real); detached, D is not updated here
            real_logits = D(hr).detach() if adv.needs_real_logits else None
            terms["g/adv"] = adv.g_loss(D(fake), real_logits)
        # float32 sum: under fp16 autocast the terms may differ in dtype
        total = sum((t.float() for t in terms.values()), fake.new_zeros((), dtype=torch.float32))
        logs: Logs = {k: v.detach() for k, v in terms.items()}
        logs["g/total"] = total.detach()
        return total, logs

    # --- monitoring -----------------------------------------------------------------
    def _super_resolve(self, G: nn.Module, lr: Tensor) -> Tensor:
        h, w = lr.shape[-2:]
        if self.eval_tile is not None and max(h, w) > self.eval_tile:
            from ..tiling import tiled_apply

            return tiled_apply(G, lr, scale=self.scale, tile=self.eval_tile, overlap=self.eval_tile_overlap)
        return G(lr)

    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> Tensor:
        """(3N, 3, H, W) in [0, 1]: bicubic ×s of LR, G(LR), HR for each item (rows of 3)."""
        lr, hr = batch["lr"], batch["hr"]
        sr = self._super_resolve(G, lr).float().clamp(0, 1)
        bic = bicubic_upscale(lr, self.scale)
        return torch.stack([bic, sr, hr.float().clamp(0, 1)], 1).flatten(0, 1)

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """Mean PSNR/SSIM (RGB and Y, border ``scale`` cropped) of G and of bicubic, over all images."""
        from ..metrics.image import ImageQuality

        gather = accelerator.gather_for_metrics
        model = ImageQuality(crop_border=self.scale, y_channel=True, gather=gather)
        baseline = ImageQuality(crop_border=self.scale, y_channel=True, gather=gather)
        for batch in batches:
            lr, hr = batch["lr"], batch["hr"].float()
            sr = self._super_resolve(G, lr).float().clamp(0, 1)
            if sr.shape != hr.shape:
                raise ValueError(f"generator output {tuple(sr.shape)} does not match HR {tuple(hr.shape)}; "
                                 f"is the generator ×{self.scale}?")
            model.update(sr, hr)
            baseline.update(bicubic_upscale(lr, self.scale), hr)
        if model.num_images == 0:
            return {}
        out = model.compute()
        out.update({f"bicubic/{k}": v for k, v in baseline.compute().items()})
        return out

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """Inference facts: LR in [0, 1] -> SR ×scale in [0, 1] (clamp), LR by MATLAB bicubic."""
        return {"scale": self.scale, "value_range": [0, 1], "input": "lr", "output": "hr",
                "degradation": "matlab_bicubic"}
