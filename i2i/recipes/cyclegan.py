"""CycleGAN: unpaired image-to-image translation with two generators and two discriminators.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017. With G: A -> B, F: B -> A and discriminators D_B (real b
vs G(a)) and D_A (real a vs F(b)):

    L_GAN(G, D_B)  adversarial, least-squares form (§4 "Training details", Mao et al. 2017):
                   G minimises E_a[(D_B(G(a)) - 1)²]; D_B minimises E_b[(D_B(b) - 1)²] + E_a[D_B(G(a))²]
    L_cyc(G, F)  = E_a[‖F(G(a)) - a‖₁] + E_b[‖G(F(b)) - b‖₁]                         (eq. 2)
    L            = L_GAN(G, D_B) + L_GAN(F, D_A) + λ L_cyc(G, F),   λ = 10           (eq. 3)
    L_identity   = E_b[‖G(b) - b‖₁] + E_a[‖F(a) - a‖₁], weight 0.5 λ                 (§5.2, eq. 6)

Slots: ``generator_ab`` (the paper's G), ``generator_ba`` (F), ``discriminator_a`` (D_A,
judges domain A), ``discriminator_b`` (D_B, judges domain B). The released code names its
discriminators after the generator they train against (its ``netD_A`` judges domain B);
here each is named after the domain it judges, as in the paper.

Loss slots: ``adversarial`` (:class:`~i2i.losses.adversarial.AdversarialLoss`, objective
``lsgan``), ``cycle`` (``l1``, weight = λ = 10) and optionally ``identity`` (``l1``,
weight = 0.5 λ = 5; absent or 0 = no identity term and no extra generator passes). The
paper divides D's objective by 2 ("slows down the rate at which D learns"): that is
``losses.adversarial.d_weight: 0.5``; the wrapper itself has no ½ (its LSGAN is the released
code's ``nn.MSELoss`` against targets 1 and 0), so ``d_weight: 0.5`` reproduces the released
``(loss_D_real + loss_D_fake) * 0.5`` exactly.

Per training step, as the released ``CycleGANModel.optimize_parameters``: one forward
(G(a), F(G(a)), F(b), G(F(b))), one update of **both generators** jointly with the
discriminators frozen, then one update of **both discriminators** on real images and on
fakes drawn from a history of 50 generated images per discriminator (:class:`ImagePool`,
Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial
Training", CVPR 2017, §2.3). The pools are this process's training state
(:meth:`CycleGAN.train_state`), saved in every checkpoint, so a resumed run is exact.

Batches: ``{"A": (N, C_A, H, W), "B": (N, C_B, H, W)}`` in [-1, 1] (:mod:`i2i.data.unpaired`),
A and B unrelated images; evaluation items may carry ``"paired"`` when B is A's true
counterpart (then PSNR/SSIM are reported too).
"""
from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS, GENERATORS, RECIPES, Registry
from .base import Batch, Logs, Nets, Outputs, Recipe, Update
from .pix2pix import image_metrics, laplacian_energy, pad_predict

__all__ = ["CycleGAN", "ImagePool"]


class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017, §2.3).

    ``query(images)``, image by image (the released code's ``ImagePool``): while fewer than
    ``size`` are stored, store the image and return it; afterwards, with probability ½ return
    a stored image chosen uniformly and store the new one in its place, else return the new
    one. ``size = 0`` returns the batch unchanged.

    The draws come from torch's global CPU generator (not Python's ``random``), whose state
    the engine saves with every checkpoint; the stored images are saved through
    :meth:`state_dict`. Together: a resumed run draws and returns exactly what the
    uninterrupted one did. The draws are host-side numbers: no device synchronisation.
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ConfigError(f"must be >= 0, got {size}", "pool_size")
        self.size = size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """(N, C, H, W) new fakes (detached) -> (N, C, H, W) fakes to show the discriminator."""
        if self.size == 0:
            return images
        out = []
        for img in images:
            img = img.detach().clone()  # not a view: a stored view would keep the whole batch alive
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif torch.rand(()).item() < 0.5:
                k = int(torch.randint(self.size, ()).item())
                old = self.images[k].to(device=img.device, dtype=img.dtype)
                self.images[k] = img
                out.append(old)
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (CPU copies, in storage order): tensors only, for ``weights_only`` loading."""
        return {"images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s images (``{}``: empty); they move to the fakes' device when used."""
        images = list(state.get("images", []))
        if len(images) > self.size:
            raise ConfigError(f"the checkpoint's pool holds {len(images)} images, more than pool_size={self.size}",
                              "recipe.pool_size")
        self.images = images


def _channels(net: nn.Module) -> tuple[int, int] | None:
    """(input, output) channels of a conv net: its first and last convolution (best effort)."""
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return (convs[0].in_channels, convs[-1].out_channels) if convs else None


def _to01(x: Tensor) -> Tensor:
    return x.float().add(1).div(2).clamp(0, 1)


@RECIPES.register("cyclegan")
class CycleGAN(Recipe):
    """A <-> B translation from unpaired data (see module docstring).

    Args:
        losses: ``{"adversarial", "cycle"[, "identity"]}`` built from ``losses:``.
        pool_size: images in each discriminator's history (50 in the paper; 0 = none).
        multiple: size multiple for padded inference; ``null`` = the generators' own
            ``multiple`` attribute (4 for the ResNet generators), read in :meth:`setup`.
    """

    model_slots: ClassVar[dict[str, Registry]] = {"generator_ab": GENERATORS, "generator_ba": GENERATORS,
                                                  "discriminator_a": DISCRIMINATORS, "discriminator_b": DISCRIMINATORS}
    loss_slots = ("adversarial", "cycle", "identity")
    required_losses = ("adversarial", "cycle")
    ema_slots = ("generator_ab", "generator_ba")
    inference_slots = ("generator_ab", "generator_ba")
    grid_nrow = 6  # sample_grid(): one [a, G(a), F(G(a)), b, F(b), G(F(b))] row per item

    def __init__(self, losses: dict[str, nn.Module], pool_size: int = 50, multiple: int | None = None):
        super().__init__(losses)
        for slot in self.required_losses:
            if slot not in self.losses:
                raise ConfigError("required by recipe 'cyclegan'", f"losses.{slot}")
        if multiple is not None and multiple < 1:
            raise ConfigError(f"must be >= 1, got {multiple}", "multiple")
        self.pool_size = pool_size
        self.pools = {"a": ImagePool(pool_size), "b": ImagePool(pool_size)}
        self.multiple = multiple or 1
        self._multiple_given = multiple is not None
        self.channels: dict[str, int] = {}

    @property
    def uses_identity(self) -> bool:
        return "identity" in self.losses and self.losses["identity"].weight != 0

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Read the generators' size multiple; check that the networks' channels agree. The
        discriminators may be absent (an export loaded for inference holds the generators only)."""
        for slot in ("discriminator_a", "discriminator_b"):
            self.check_adversary(models.get(slot))
        G, F = models["generator_ab"], models["generator_ba"]
        if not self._multiple_given:
            self.multiple = math.lcm(int(getattr(G, "multiple", 1)), int(getattr(F, "multiple", 1)))
        g, f = _channels(G), _channels(F)
        if g is None or f is None:
            return
        a, b = g
        self.channels = {"a_channels": a, "b_channels": b}
        if f != (b, a):
            raise ConfigError(f"generator_ab maps {a} -> {b} channels, so generator_ba must map {b} -> {a}, got "
                              f"{f[0]} -> {f[1]}", "models.generator_ba")
        for slot, want in (("discriminator_a", a), ("discriminator_b", b)):
            d = _channels(models[slot]) if slot in models else None
            if d is not None and d[0] != want:
                raise ConfigError(f"{slot} judges domain {slot[-1].upper()} images of {want} channels, got "
                                  f"in_channels {d[0]}", f"models.{slot}.in_channels")
        if self.uses_identity and a != b:
            raise ConfigError(f"the identity term feeds B images ({b} channels) to generator_ab, which takes {a}: "
                              f"drop losses.identity or give both domains the same channels", "losses.identity")

    # --- training -------------------------------------------------------------------
    def updates(self, slots: Collection[str], d_steps: int = 1) -> list[Update]:
        """Both generators in one update (D's frozen), then both discriminators (the released order)."""
        return [Update("g", ("generator_ab", "generator_ba"), self.g_loss),
                Update("d", ("discriminator_a", "discriminator_b"), self.d_loss, repeat=d_steps, graph=False)]

    def run_forward(self, nets: Nets, batch: Batch) -> Outputs:
        """fake_b = G(a), rec_a = F(G(a)), fake_a = F(b), rec_b = G(F(b)); each (N, C, H, W) in [-1, 1]."""
        G, F = nets["generator_ab"], nets["generator_ba"]
        fake_b = G(batch["A"])
        fake_a = F(batch["B"])
        return {"fake_b": fake_b, "rec_a": F(fake_b), "fake_a": fake_a, "rec_b": G(fake_a)}

    def g_loss(self, nets: Nets, batch: Batch, out: Outputs) -> tuple[Tensor, Logs]:
        """L_GAN(G, D_B) + L_GAN(F, D_A) + λ L_cyc + 0.5 λ L_identity, each term logged on its own."""
        adv, cycle = self.losses["adversarial"], self.losses["cycle"]
        a, b = batch["A"], batch["B"]
        terms = {
            "g/adv_ab": adv.g_loss(nets["discriminator_b"](out["fake_b"])),  # G fools D_B
            "g/adv_ba": adv.g_loss(nets["discriminator_a"](out["fake_a"])),  # F fools D_A
            "g/cycle_a": cycle(out["rec_a"], a),  # λ‖F(G(a)) - a‖₁
            "g/cycle_b": cycle(out["rec_b"], b),  # λ‖G(F(b)) - b‖₁
        }
        if self.uses_identity:
            identity = self.losses["identity"]
            terms["g/idt_b"] = identity(nets["generator_ab"](b), b)  # G leaves B images alone
            terms["g/idt_a"] = identity(nets["generator_ba"](a), a)  # F leaves A images alone
        loss = torch.stack([t.float() for t in terms.values()]).sum()
        logs = {k: v.detach() for k, v in terms.items()}
        logs["g/total"] = loss.detach()
        return loss, logs

    def d_loss(self, nets: Nets, batch: Batch, out: Outputs) -> tuple[Tensor, Logs]:
        """D_A on real a vs pooled F(b), D_B on real b vs pooled G(a); both × d_weight (0.5)."""
        adv = self.losses["adversarial"]
        fake_a = self.pools["a"].query(out["fake_a"].detach())
        fake_b = self.pools["b"].query(out["fake_b"].detach())
        loss_a, logs_a = adv.discriminator_terms(nets["discriminator_a"], batch["A"], fake_a)
        loss_b, logs_b = adv.discriminator_terms(nets["discriminator_b"], batch["B"], fake_b)
        logs = {k.replace("d/", "d_a/", 1): v for k, v in logs_a.items()}
        logs.update({k.replace("d/", "d_b/", 1): v for k, v in logs_b.items()})
        loss = loss_a + loss_b
        logs["d/loss"] = loss.detach()
        return loss, logs

    def train_state(self) -> dict[str, Any]:
        """The two image pools (see :class:`ImagePool`)."""
        return {f"pool_{d}": p.state_dict() for d, p in self.pools.items()}

    def load_train_state(self, state: dict[str, Any]) -> None:
        """Restore the pools; ``{}`` (another number of processes) empties them."""
        for d, p in self.pools.items():
            p.load_state_dict(state.get(f"pool_{d}", {}))

    # --- monitoring -----------------------------------------------------------------
    def _translate(self, nets: Nets, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        G, F = nets["generator_ab"], nets["generator_ba"]
        fake_b, fake_a = pad_predict(G, a, self.multiple), pad_predict(F, b, self.multiple)
        return {"fake_b": fake_b, "rec_a": pad_predict(F, fake_b, self.multiple),
                "fake_a": fake_a, "rec_b": pad_predict(G, fake_a, self.multiple)}

    @torch.no_grad()
    def sample_grid(self, nets: Nets, batch: Batch) -> Tensor:
        """(6N, C, H, W) in [0, 1]: per item a, G(a), F(G(a)), b, F(b), G(F(b)) (grid rows of 6)."""
        a, b = batch["A"], batch["B"]
        o = self._translate(nets, a, b)
        imgs = [a, o["fake_b"], o["rec_a"], b, o["fake_a"], o["rec_b"]]
        c = max(x.shape[1] for x in imgs)
        imgs = [x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x for x in imgs]
        return _to01(torch.stack(imgs, 1).flatten(0, 1))

    @torch.no_grad()
    def run_evaluation(self, nets: Nets, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """Means over all validation items, gathered across processes:

        * ``cycle_a`` = mean |F(G(a)) - a|, ``cycle_b`` = mean |G(F(b)) - b| per image, in [-1, 1]
          units (the unweighted training term; 0 = perfect reconstruction, at most 2);
        * ``sharpness_ab`` = mean((∇²G(a))²) / mean((∇²b)²) over the set, ``sharpness_ba`` likewise
          (:func:`~i2i.recipes.pix2pix.laplacian_energy` on [0, 1] images): translations as
          detailed as the target domain's real images score 1, blurry ones below;
        * where the items are ``paired`` (B is A's true counterpart): ``l1_ab``, ``psnr_ab``,
          ``ssim_ab`` of G(a) against b and ``l1_ba``, ``psnr_ba``, ``ssim_ba`` of F(b) against a
          (:func:`~i2i.recipes.pix2pix.image_metrics`).
        """
        per: dict[str, list[Tensor]] = {}

        def add(key: str, v: Tensor) -> None:
            per.setdefault(key, []).append(accelerator.gather_for_metrics(v.float().contiguous()))

        for batch in batches:
            a, b = batch["A"], batch["B"]
            o = self._translate(nets, a, b)
            add("cycle_a", (o["rec_a"].float() - a.float()).abs().flatten(1).mean(1))
            add("cycle_b", (o["rec_b"].float() - b.float()).abs().flatten(1).mean(1))
            for name, x in (("lap_fake_b", o["fake_b"]), ("lap_b", b), ("lap_fake_a", o["fake_a"]), ("lap_a", a)):
                add(name, laplacian_energy(_to01(x)))
            if "paired" in batch:
                for direction, fake, real in (("ab", o["fake_b"], b), ("ba", o["fake_a"], a)):
                    m = image_metrics(fake, real)
                    for k in ("l1", "psnr", "ssim"):
                        add(f"{k}_{direction}", m[k])
        if not per:
            return {}
        mean = {k: torch.cat(v).mean().item() for k, v in per.items()}
        out = {k: v for k, v in mean.items() if not k.startswith("lap_")}
        out["sharpness_ab"] = mean["lap_fake_b"] / max(mean["lap_b"], 1e-12)  # eps: a flat domain
        out["sharpness_ba"] = mean["lap_fake_a"] / max(mean["lap_a"], 1e-12)
        return out

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """Inference facts: images in [-1, 1], pad H, W to ``multiple``; which slot goes which way."""
        return {"value_range": [-1, 1], "multiple": self.multiple, **self.channels,
                "directions": {"AtoB": "generator_ab", "BtoA": "generator_ba"}}
