"""Digit generation recipes: GAN / DCGAN (unconditional), CGAN, ACGAN.

* ``gan`` — Goodfellow et al. 2014: min_G max_D E log D(x) + E log(1 - D(G(z))); the
  generator term is whatever ``losses.adversarial.objective`` says (non-saturating by
  default). DCGAN (Radford et al. 2016) is this recipe with the ``dcgan`` networks.
* ``cgan`` — Mirza & Osindero 2014: G(z|y), D(x|y); fakes use the real batch's labels.
* ``acgan`` — Odena et al. 2017, eqs. 2-3: D outputs P(real) and P(class); with
  L_S = adversarial and L_C = cross-entropy of the class head on real *and* fake images,
  D maximises L_S + L_C and G maximises L_C − L_S. Here: D minimises
  ``adv.d_loss + aux(real) + aux(fake)``, G minimises ``adv.g_loss + aux(fake)``;
  ``losses.auxiliary.weight`` scales L_C. Fake labels are drawn uniformly.
  ``d_aux_on_fake: false`` trains D's class head on real images only (a common variant:
  with it on, D and G can agree on a permuted "code" for the classes, and G is pushed to the
  single most classifiable image per class — Shu et al. 2017, "AC-GAN learns a biased
  distribution"). ``g_aux_scale`` multiplies G's class term only (1 = the paper).

Batches: ``{"image": (N, 1, 28, 28) in [-1, 1], "label": (N,) int64}``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.sampling import discriminate, generate_digits
from ..nn.sampling import rank_by_discriminator as sample_best
from ..registry import RECIPES
from .base import Batch, GeneratorRecipe, Logs


class DigitsRecipe(GeneratorRecipe):
    """Shared by gan/cgan/acgan: they differ in who sees labels and in the auxiliary term."""

    loss_slots = ("adversarial", "auxiliary")
    required_losses = ("adversarial",)
    label_to_g: ClassVar[bool] = False
    label_to_d: ClassVar[bool] = False
    aux_head: ClassVar[bool] = False

    def __init__(self, losses: dict[str, nn.Module], num_classes: int = 10, eval_samples_per_class: int = 100,
                 eval_seed: int = 1234, d_aux_on_fake: bool = True, g_aux_scale: float = 1.0):
        super().__init__(losses)
        self.d_aux_on_fake = d_aux_on_fake
        self.g_aux_scale = g_aux_scale
        self.num_classes = num_classes
        self.eval_samples_per_class = eval_samples_per_class
        self.eval_seed = eval_seed
        self.grid_nrow = num_classes if self.label_to_g else 8
        self.z_dim = 0
        self.train_dataset: Any = None
        if self.aux_head and "auxiliary" not in losses:
            raise ConfigError("ACGAN needs an auxiliary classification loss, e.g. {type: cross_entropy}", "losses.auxiliary")

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        G = models["generator"]
        self.z_dim = int(G.z_dim)
        self.check_adversary(models.get("discriminator"))
        self.train_dataset = train_dataset
        want_g = self.num_classes if self.label_to_g else 0
        if getattr(G, "num_classes", 0) != want_g:
            raise ConfigError(f"recipe needs num_classes={want_g} for the generator, got {getattr(G, 'num_classes', 0)}",
                              "models.generator.num_classes")
        D = models.get("discriminator")
        if D is not None:
            want_d = self.num_classes if self.label_to_d else 0
            if getattr(D, "num_classes", 0) != want_d:
                raise ConfigError(f"recipe needs num_classes={want_d} for the discriminator", "models.discriminator.num_classes")
            if self.aux_head != (getattr(D, "aux", None) is not None):
                raise ConfigError(f"recipe needs aux_classes={self.num_classes if self.aux_head else 0}",
                                  "models.discriminator.aux_classes")

    # --- generation -------------------------------------------------------------------
    def generate(self, G: nn.Module, labels: Tensor, z: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Images (N, 1, 28, 28) in [-1, 1] for ``labels`` (N,) (ignored by unconditional G)."""
        return generate_digits(G, labels, self.z_dim, self.label_to_g, z, generator)

    def _D(self, D: nn.Module, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return discriminate(D, x, y, self.label_to_d)

    # --- training ---------------------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> dict[str, Tensor]:  # type: ignore[override]
        real = batch["image"]
        n = real.shape[0]
        if self.aux_head:  # ACGAN samples the class of every fake
            y = torch.randint(0, self.num_classes, (n,), device=real.device)
        else:
            y = batch["label"]
        z = torch.randn(n, self.z_dim, device=real.device)
        return {"fake": G(z, y) if self.label_to_g else G(z), "y_fake": y}

    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        adv = self.losses["adversarial"]
        real, y = batch["image"], batch["label"]
        fake, y_fake = out["fake"].detach(), out["y_fake"]
        r_adv, r_aux = self._D(D, real, y)
        f_adv, f_aux = self._D(D, fake, y_fake)
        loss = adv.d_loss(r_adv, f_adv)
        logs: Logs = {"d/adv": loss.detach(), "d/real": adv.score(r_adv), "d/fake": adv.score(f_adv)}
        if adv.needs_penalty:
            gp = adv.penalty(lambda x: self._D(D, x, y)[0], real, fake)
            loss = loss + gp
            logs["d/gp"] = gp.detach()
        if self.aux_head:
            assert r_aux is not None and f_aux is not None
            aux = self.losses["auxiliary"](r_aux, y)
            if self.d_aux_on_fake:
                aux = aux + self.losses["auxiliary"](f_aux, y_fake)
            loss = loss + aux
            logs["d/aux"] = aux.detach()
            logs["d/aux_acc_real"] = (r_aux.argmax(1) == y).float().mean()
        logs["d/loss"] = loss.detach()
        return loss, logs

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        assert D is not None
        adv = self.losses["adversarial"]
        f_adv, f_aux = self._D(D, out["fake"], out["y_fake"])
        loss = adv.g_loss(f_adv)
        logs: Logs = {"g/adv": loss.detach()}
        if self.aux_head:
            assert f_aux is not None
            aux = self.g_aux_scale * self.losses["auxiliary"](f_aux, out["y_fake"])
            loss = loss + aux
            logs["g/aux"] = aux.detach()
        logs["g/total"] = loss.detach()
        return loss, logs

    # --- monitoring -------------------------------------------------------------------
    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> Tensor:
        """Fixed noise (seed ``eval_seed``): row i, column j shows class j for conditional G."""
        n = batch["image"].shape[0]
        device = batch["image"].device
        labels = (torch.arange(n) % self.num_classes).to(device)
        g = torch.Generator().manual_seed(self.eval_seed)
        return self.generate(G, labels, generator=g).add(1).div(2).clamp(0, 1)

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        from ..metrics.generation import feature_stats, frechet_distance, get_classifier

        if self.train_dataset is None:
            return {}
        with accelerator.main_process_first():  # one process trains the classifier, the others load it
            clf = get_classifier(self.train_dataset, self.num_classes)
        device = accelerator.device
        clf = clf.to(device)
        real_feats, correct, total = [], 0, 0
        for batch in batches:
            logits, f = clf(batch["image"].float())
            hits = accelerator.gather_for_metrics((logits.argmax(1) == batch["label"]).float())
            correct += hits.sum().item()
            total += hits.numel()
            real_feats.append(accelerator.gather_for_metrics(f).cpu())
        # every process generates the same fixed-seed set: the metric does not depend on world size
        k = self.num_classes
        labels = torch.arange(k).repeat_interleave(self.eval_samples_per_class)
        g = torch.Generator().manual_seed(self.eval_seed)
        fake_feats, hits_fake = [], torch.zeros(k)
        for chunk in labels.split(500):
            imgs = self.generate(G, chunk.to(device), generator=g)
            logits, f = clf(imgs.float())
            fake_feats.append(f.cpu())
            ok = (logits.argmax(1).cpu() == chunk).float()
            hits_fake.index_add_(0, chunk, ok)
        metrics: dict[str, float] = {"real_accuracy": correct / max(total, 1)}
        if self.label_to_g:
            per_class = hits_fake / self.eval_samples_per_class
            metrics["label_fidelity"] = float(per_class.mean())
            metrics.update({f"label_fidelity/{c}": float(per_class[c]) for c in range(k)})
        if real_feats:
            mu_r, s_r = feature_stats(torch.cat(real_feats))
            mu_f, s_f = feature_stats(torch.cat(fake_feats))
            metrics["frechet_distance"] = frechet_distance(mu_r, s_r, mu_f, s_f)
        return metrics

    def export_meta(self) -> dict[str, Any]:
        return {"value_range": [-1, 1], "num_classes": self.num_classes, "z_dim": self.z_dim,
                "conditional": self.label_to_g, "image_shape": [1, 28, 28]}


@RECIPES.register("gan")
class GANRecipe(DigitsRecipe):
    """Unconditional GAN / DCGAN."""


@RECIPES.register("cgan")
class CGANRecipe(DigitsRecipe):
    label_to_g = True
    label_to_d = True


@RECIPES.register("acgan")
class ACGANRecipe(DigitsRecipe):
    loss_slots = ("adversarial", "auxiliary")
    required_losses = ("adversarial", "auxiliary")
    label_to_g = True
    aux_head = True


@torch.no_grad()
def rank_by_discriminator(recipe: DigitsRecipe, G: nn.Module, D: nn.Module, labels: Tensor, k: int,
                          generator: torch.Generator | None = None) -> Tensor:
    """Generate ``k`` candidates per requested label and keep the one D scores highest.

    Returns (len(labels), 1, 28, 28) in [-1, 1]. For ACGAN the score also requires the
    auxiliary head to agree with the requested label (log P(real) + log P(y|x)).
    """
    return sample_best(G, D, labels, k, recipe.z_dim, recipe.label_to_g, recipe.label_to_d, generator)
