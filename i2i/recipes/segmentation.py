"""Adversarial semantic segmentation (recipe ``seg_adversarial``).

Luc, Couprie, Chintala & Verbeek, "Semantic Segmentation using Adversarial Networks",
NIPS 2016 Workshop on Adversarial Training (arXiv:1611.08408), eq. 1:

    ℓ(θs, θa) = Σ_n mce(s(x_n), y_n) − λ [ bce(a(x_n, y_n), 1) + bce(a(x_n, s(x_n)), 0) ]

minimised over the segmentor s and maximised over the adversary a. Here:

* adversary step (eq. 2): minimise bce(a(x, y), 1) + bce(a(x, s(x)), 0) with s(x) detached:
  ``losses.adversarial.d_loss`` with a sigmoid objective (its ``d_weight``, default 1,
  multiplies it; λ only rescales this step's gradient in eq. 1 and is not applied).
* segmentor step (eq. 3): minimise mce(s(x), y) + ``adversarial.g_loss(a(x, s(x)))``, where
  ``objective: minimax`` gives exactly −λ·bce(a(x, s(x)), 0) and ``objective:
  non_saturating`` the paper's preferred +λ·bce(a(x, s(x)), 1) (§3.1). λ is
  ``losses.adversarial.weight``.
* baseline: with no ``models.discriminator`` (and no ``losses.adversarial``) the engine
  never calls :meth:`d_loss` and the segmentor minimises the cross-entropy alone through
  the same :meth:`g_loss`; ``weight: 0`` also skips the adversary in the segmentor step.

Ignored pixels (``ignore_index``, VOC's void) are excluded from the cross-entropy
(``losses.segmentation.ignore_index`` must match) and enter the adversary as all-zero
class maps in both the ground-truth and the predicted input. With an adversary whose
``encoding`` is ``scaling`` the ground truth is softened by
:func:`~i2i.nn.seg_adversary.scale_labels` with the adversary's ``tau`` (read in
:meth:`setup`, so the encoding is configured in one place).

Batches: ``{"image": (N, 3, H, W) float in [0, 1], "mask": (N, H, W) int64}`` (see
:mod:`i2i.data.segmentation`). The segmentor returns logits (N, C, H, W).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.segmentation import pascal_palette
from ..errors import ConfigError
from ..metrics.segmentation import ConfusionMatrix
from ..nn.seg_adversary import scale_labels, to_onehot, valid_mask
from ..nn.segmentor import IMAGENET_MEAN, IMAGENET_STD
from ..registry import RECIPES
from .base import Batch, GeneratorRecipe, Logs

IGNORE_COLOUR = (224, 224, 192)  # VOC's colour for void pixels in sample grids


def colourise(labels: Tensor, palette: Tensor, ignore_index: int = 255) -> Tensor:
    """(N, H, W) labels -> (N, 3, H, W) float in [0, 1] through a (C, 3) uint8 palette;
    ignored (and out-of-table) pixels get VOC's void colour."""
    pal = torch.cat([palette.to(labels.device, torch.float32),
                     torch.tensor([IGNORE_COLOUR], dtype=torch.float32, device=labels.device)]) / 255.0
    idx = torch.where((labels >= 0) & (labels < palette.shape[0]), labels, torch.full_like(labels, palette.shape[0]))
    return pal[idx].permute(0, 3, 1, 2).contiguous()


@RECIPES.register("seg_adversarial")
class SegAdversarial(GeneratorRecipe):
    """Segmentor s (``generator`` slot) + optional adversary a (``discriminator`` slot).

    Args:
        losses: ``{"segmentation": cross_entropy (ignore_index = this recipe's),
            "adversarial": AdversarialLoss}`` (the latter only with a discriminator).
        num_classes: C; checked against the segmentor, the adversary and the dataset.
        ignore_index: label of unlabelled pixels.
        class_names: names for metrics and export; ``null`` = the training dataset's
            ``classes`` (else ``class_0``...).
        palette: [[r, g, b], ...] colours for sample grids and export; ``null`` = the
            dataset's ``palette`` (else the VOC colour map).
    """

    optional_models = ("discriminator",)
    loss_slots = ("segmentation", "adversarial")
    required_losses = ("segmentation",)
    grid_nrow = 3  # samples(): one [image | prediction | ground truth] triple per row

    def __init__(self, losses: dict[str, nn.Module], num_classes: int, ignore_index: int = 255,
                 class_names: list[str] | None = None, palette: list[list[int]] | None = None):
        super().__init__(losses)
        if "segmentation" not in self.losses:
            raise ConfigError("required by recipe 'seg_adversarial', e.g. {type: cross_entropy, ignore_index: 255}",
                              "losses.segmentation")
        if num_classes < 1:
            raise ConfigError(f"must be >= 1, got {num_classes}", "num_classes")
        if 0 <= ignore_index < num_classes:
            raise ConfigError(f"{ignore_index} is a class id (num_classes={num_classes})", "ignore_index")
        seg_ignore = getattr(self.losses["segmentation"], "ignore_index", ignore_index)
        if seg_ignore != ignore_index:
            raise ConfigError(f"must equal recipe.ignore_index={ignore_index}, got {seg_ignore}",
                              "losses.segmentation.ignore_index")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} names for {num_classes} classes", "class_names")
        if palette is not None and (len(palette) != num_classes or any(len(c) != 3 for c in palette)):
            raise ConfigError(f"expected {num_classes} [r, g, b] colours", "palette")
        adv = self.losses["adversarial"] if "adversarial" in self.losses else None
        if adv is not None and not getattr(getattr(adv, "objective", None), "sigmoid", True):
            # eq. 1 is a binary cross-entropy game; a score-based objective is another method
            raise ConfigError(f"the paper's game needs a sigmoid objective (minimax, non_saturating), "
                              f"got {getattr(adv, 'name', '?')}", "losses.adversarial.objective")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.palette = [list(map(int, c)) for c in palette] if palette is not None else None
        self.encoding = "basic"
        self.tau = 0.9

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Check class counts; read the adversary's encoding/τ and the dataset's class table."""
        G, D = models["generator"], models.get("discriminator")
        g_classes = getattr(G, "num_classes", self.num_classes)
        self.check_adversary(D)
        if g_classes != self.num_classes:
            raise ConfigError(f"segmentor has {g_classes} classes, recipe.num_classes={self.num_classes}",
                              "models.generator.num_classes")
        adv = self.losses["adversarial"] if "adversarial" in self.losses else None
        if D is not None:
            if adv is None:
                raise ConfigError("a discriminator needs losses.adversarial (e.g. {type: adversarial, "
                                  "objective: non_saturating, weight: 0.5})", "losses.adversarial")
            d_classes = getattr(D, "num_classes", self.num_classes)
            if d_classes != self.num_classes:
                raise ConfigError(f"adversary has {d_classes} classes, recipe.num_classes={self.num_classes}",
                                  "models.discriminator.num_classes")
            self.encoding = str(getattr(D, "encoding", "basic"))
            self.tau = float(getattr(D, "tau", 0.9))
        elif adv is not None and adv.weight != 0:
            raise ConfigError("losses.adversarial has weight != 0 but there is no models.discriminator",
                              "models.discriminator")
        names = tuple(getattr(train_dataset, "classes", ()) or ())
        if names and len(names) != self.num_classes:
            raise ConfigError(f"the dataset has {len(names)} classes, recipe.num_classes={self.num_classes}",
                              "recipe.num_classes")
        if self.class_names is None and names:
            self.class_names = list(names)
        pal = tuple(getattr(train_dataset, "palette", ()) or ())
        if self.palette is None and len(pal) == self.num_classes:
            self.palette = [list(map(int, c)) for c in pal]

    # --- helpers --------------------------------------------------------------------
    def names(self) -> list[str]:
        return self.class_names or [f"class_{i}" for i in range(self.num_classes)]

    def colours(self) -> list[list[int]]:
        return self.palette or [list(c) for c in pascal_palette(self.num_classes)]

    def adversary_inputs(self, batch: Batch, probs: Tensor) -> tuple[Tensor, Tensor]:
        """(ground-truth maps, predicted maps), both (N, C, H, W), zero at ignored pixels.

        The ground truth is one-hot, or scaled toward ``probs`` (detached) for the
        ``scaling`` encoding; the prediction keeps its graph (the segmentor step needs it).
        """
        mask = batch["mask"]
        real = to_onehot(mask, self.num_classes, self.ignore_index, check=False)  # see to_onehot: no host read
        if self.encoding == "scaling":
            real = scale_labels(real, probs, self.tau)
        fake = probs * valid_mask(mask, self.ignore_index)
        return real, fake

    # --- training -------------------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> dict[str, Tensor]:  # type: ignore[override]
        logits = G(batch["image"])
        return {"logits": logits, "probs": torch.softmax(logits.float(), dim=1)}

    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        """bce(a(x, y), 1) + bce(a(x, s(x)), 0) on the detached prediction (× d_weight)."""
        adv = self.losses["adversarial"]
        image = batch["image"]
        real, fake = self.adversary_inputs(batch, out["probs"].detach())
        real_logits, fake_logits = D(image, real), D(image, fake)
        loss = adv.d_loss(real_logits, fake_logits)
        return loss, {"d/real": adv.score(real_logits), "d/fake": adv.score(fake_logits), "d/loss": loss.detach()}

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        """mce(s(x), y) + λ·g(a(x, s(x))), λ and g from ``losses.adversarial``."""
        logits = out["logits"]
        ce = self.losses["segmentation"](logits, batch["mask"])  # already × its weight
        adv = self.losses["adversarial"] if "adversarial" in self.losses else None
        if D is None or adv is None or adv.weight == 0:
            g_adv = ce.new_zeros(())
        else:
            _, fake = self.adversary_inputs(batch, out["probs"])
            g_adv = adv.g_loss(D(batch["image"], fake))
        loss = ce + g_adv
        return loss, {"g/ce": ce.detach(), "g/adv": g_adv.detach(), "g/total": loss.detach()}

    # --- monitoring -----------------------------------------------------------------
    def _predict(self, G: nn.Module, image: Tensor, size: tuple[int, int]) -> Tensor:
        logits = G(image).float()
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits.argmax(1)

    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> Tensor:
        """(3N, 3, H, W) in [0, 1]: image, colourised prediction, colourised ground truth."""
        image, mask = batch["image"], batch["mask"]
        pred = self._predict(G, image, tuple(mask.shape[-2:]))
        pal = torch.tensor(self.colours(), dtype=torch.uint8)
        rows = [image.float().clamp(0, 1), colourise(pred, pal, self.ignore_index),
                colourise(mask, pal, self.ignore_index)]
        return torch.stack(rows, 1).flatten(0, 1)

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """pixel_acc, class_acc (mean per-class recall), miou, ``iou/<class>``, ``acc/<class>``
        and ``labelled_pixels`` (the pixels counted, ignored ones excluded).

        Per-image confusion counts go through ``accelerator.gather_for_metrics`` batch by
        batch (cheap: C² integers per image) rather than one ``accelerator.reduce`` of the
        summed matrix, because the distributed sampler pads the last batch with duplicate
        images that only ``gather_for_metrics`` knows to drop.
        """
        cm = ConfusionMatrix(self.num_classes, self.ignore_index, gather=accelerator.gather_for_metrics,
                             class_names=self.names())
        seen = False
        for batch in batches:
            mask = batch["mask"]
            cm.update(self._predict(G, batch["image"], tuple(mask.shape[-2:])), mask)
            seen = True
        if not seen:
            return {}
        # the number of labelled pixels scored: shows that no image was dropped or counted twice
        return {**cm.compute(), "labelled_pixels": float(cm.matrix.sum())}

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """What ``tools/infer.py`` needs to run and display the segmentor."""
        return {
            "num_classes": self.num_classes,
            "class_names": self.names(),
            "palette": self.colours(),
            "ignore_index": self.ignore_index,
            "input": "image",
            "value_range": [0, 1],
            # the segmentors standardise internally: callers pass [0, 1] RGB
            "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "inside_model": True},
            "output": "logits",
        }
