"""GAN objectives on logits, and the λ-weighted adversarial wrapper.

Every objective is written on the discriminator's raw output ``l`` (a logit for the
sigmoid-based games, a score otherwise) and is numerically stable there:
``-log σ(l) = softplus(-l)`` and ``-log(1-σ(l)) = softplus(l)``.

================== ================================== =====================================
objective          discriminator loss                  generator loss
================== ================================== =====================================
minimax            softplus(-l_r) + softplus(l_f)      -softplus(l_f) = log(1-D(G(z)))  [1]
non_saturating     softplus(-l_r) + softplus(l_f)      softplus(-l_f) = -log D(G(z))    [1]
maximum_likelihood softplus(-l_r) + softplus(l_f)      -exp(l_f) = -exp(σ⁻¹(D(G(z))))   [2]
least_squares      (l_r-1)² + l_f²                     (l_f-1)²                         [3]
hinge              relu(1-l_r) + relu(1+l_f)           -l_f                             [4]
wgan_gp            l_f - l_r  (+ λ_gp·GP)              -l_f                             [5]
relativistic       softplus(-(l_r-f̄)) + softplus(l_f-r̄) softplus(l_r-f̄) + softplus(-(l_f-r̄)) [6]
================== ================================== =====================================

[1] Goodfellow et al., "Generative Adversarial Nets", 2014, eq. 1 and §3.
[2] Goodfellow, "NIPS 2016 Tutorial: Generative Adversarial Networks", §3.2.3, eq. 10.
[3] Mao et al., "Least Squares Generative Adversarial Networks", 2017, eq. 9 (a=0, b=c=1).
[4] Lim & Ye, "Geometric GAN", 2017; Miyato et al. 2018.
[5] Gulrajani et al., "Improved Training of Wasserstein GANs", 2017, Algorithm 1:
    GP = (‖∇_x̂ D(x̂)‖₂ - 1)² at x̂ = εx + (1-ε)x̃, ε ~ U[0, 1].
[6] The relativistic average GAN: Jolicoeur-Martineau, "The relativistic discriminator: a key
    element missing from standard GAN", ICLR 2019, eq. 7–8; ESRGAN (Wang et al., ECCVW 2018),
    eq. 1–2: D_Ra(x_r, x_f) = σ(C(x_r) − E[C(x_f)]), r̄ / f̄ = the mean logit over every element
    of the real / fake batch. Its generator loss needs D's logits on the real batch too
    (``g_loss(fake, real)``; they are detached there: G's gradient flows through the fakes only).
    BasicSR's ESRGAN code averages the two terms (a ½ on each loss): its λ = 2× the λ here.

Terms are means over every element of the logits (a PatchGAN's map counts each patch).

One scale convention for all of them: **no ½ factors**. The discriminator loss is the sum of its
real and fake terms and the generator loss has unit scale, so λ (``weight``) means the same
for every objective. Papers that write a ½ — the tutorial's J(G) for maximum likelihood [2],
Mao et al.'s LSGAN [3], Goodfellow's J(D) — differ from these by that constant only; the
released pix2pix/CycleGAN code's halved D loss is ``d_weight: 0.5``, and its LSGAN is
``nn.MSELoss`` without a ½, i.e. exactly ``least_squares`` here.
The maximum-likelihood generator loss clamps the logit at 30 before ``exp`` so that it
stays finite (exp(30) ≈ 1e13); below that clamp it is exact.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

from ..registry import GAN_OBJECTIVES, LOSSES


def _bce_real(logits: Tensor, target: float = 1.0) -> Tensor:
    """-[t log σ(l) + (1-t) log(1-σ(l))], mean. ``target < 1`` = one-sided label smoothing."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class GANObjective:
    """A pair of losses on D's outputs. ``sigmoid``: outputs are logits of P(real).

    ``needs_real``: the generator loss also takes D's logits on the real batch
    (``g_loss(fake, real)``); the other objectives accept and ignore them.
    """

    sigmoid: ClassVar[bool] = True
    needs_real: ClassVar[bool] = False

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        return _bce_real(real, real_target) + F.softplus(fake).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        raise NotImplementedError


@GAN_OBJECTIVES.register("minimax")
class Minimax(GANObjective):
    """The original saturating game: G minimises log(1 - D(G(z)))."""

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -F.softplus(fake).mean()


@GAN_OBJECTIVES.register("non_saturating")
@GAN_OBJECTIVES.register("vanilla")  # pix2pix/CycleGAN's name for the same game
class NonSaturating(GANObjective):
    """G maximises log D(G(z)): the heuristic of Goodfellow et al. §3."""

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return F.softplus(-fake).mean()


@GAN_OBJECTIVES.register("maximum_likelihood")
class MaximumLikelihood(GANObjective):
    """G minimises -exp(σ⁻¹(D(G(z)))) (the tutorial's ½ dropped: see the module docstring);
    with an optimal D its gradient is maximum likelihood's."""

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -torch.exp(fake.float().clamp(max=30.0)).mean()


@GAN_OBJECTIVES.register("least_squares")
@GAN_OBJECTIVES.register("lsgan")
class LeastSquares(GANObjective):
    sigmoid = False

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        return ((real - real_target) ** 2).mean() + (fake**2).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return ((fake - 1.0) ** 2).mean()


@GAN_OBJECTIVES.register("hinge")
class Hinge(GANObjective):
    sigmoid = False

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        return F.relu(real_target - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -fake.mean()


@GAN_OBJECTIVES.register("wgan_gp")
class WassersteinGP(GANObjective):
    sigmoid = False

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -fake.mean()


@GAN_OBJECTIVES.register("relativistic")
@GAN_OBJECTIVES.register("ragan")
class RelativisticAverage(GANObjective):
    """Relativistic average GAN (ESRGAN eq. 1–2): D judges whether real data is *more* realistic
    than the average fake, and G is trained on both the real and the fake batch."""

    needs_real = True

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        return _bce_real(real - fake.mean(), real_target) + F.softplus(fake - real.mean()).mean()

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        if real is None:
            raise ValueError("the relativistic objective's generator loss needs D's logits on the real batch: "
                             "g_loss(fake_logits, real_logits)")
        real = real.detach()
        return F.softplus(real - fake.mean()).mean() + F.softplus(-(fake - real.mean())).mean()


def gradient_penalty(d_fn: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's (‖∇D(x̂)‖₂ - 1)², mean over the batch, at random interpolates x̂ (N, ...).

    D(x̂) is the critic value *per sample*: the mean over a patch discriminator's map (N, 1,
    H, W), since that mean is what the Wasserstein loss above optimises. Differentiating the
    sum instead would ask a 30×30 PatchGAN for a gradient norm 900× too large. Gulrajani et
    al. 2017, Alg. 1; the samples' critics are independent, so one backward of their sum
    gives each sample's own gradient.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = d_fn(x_hat)
    critic = out.reshape(out.shape[0], -1).float().mean(1)  # (N,): one critic value per sample
    (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


@LOSSES.register("adversarial")
class AdversarialLoss(nn.Module):
    """λ-weighted adversarial term over a pluggable GAN objective.

    Args:
        objective: a name in ``GAN_OBJECTIVES`` (``minimax``, ``non_saturating``,
            ``maximum_likelihood``, ``least_squares``, ``hinge``, ``wgan_gp``, ``relativistic``).
        weight: λ applied to the generator's adversarial term (SRGAN: 1e-3).
        d_weight: factor on the discriminator loss (pix2pix halves it: 0.5).
        gp_weight: λ_gp for ``wgan_gp`` (Gulrajani et al.: 10).
        real_label: target for real samples in the sigmoid games (<1 = one-sided smoothing).
    """

    registry_args = {"objective": GAN_OBJECTIVES}  # validated with the config, before anything is built

    def __init__(self, objective: str = "non_saturating", weight: float = 1.0, d_weight: float = 1.0,
                 gp_weight: float = 10.0, real_label: float = 1.0):
        super().__init__()
        self.name = objective
        self.objective: GANObjective = GAN_OBJECTIVES.get(objective, "objective")()
        self.weight = float(weight)
        self.d_weight = float(d_weight)
        self.gp_weight = float(gp_weight)
        self.real_label = float(real_label)

    @property
    def needs_real_logits(self) -> bool:
        """The generator loss needs D(real) too (the relativistic objective): ``g_loss(fake, real)``."""
        return self.objective.needs_real

    @property
    def needs_penalty(self) -> bool:
        return isinstance(self.objective, WassersteinGP) and self.gp_weight > 0

    def check_discriminator(self, D: nn.Module | None, key: str = "losses.adversarial.objective") -> None:
        """WGAN-GP penalises each sample's gradient on its own; batch norm makes a sample's critic
        depend on the rest of the batch, which Gulrajani et al. (§4) rule out. One-line error."""
        if D is None or not self.needs_penalty:
            return
        bn = next((type(m).__name__ for m in D.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)), None)
        if bn is not None:
            raise ConfigError(f"wgan_gp needs a discriminator without batch norm (Gulrajani et al. §4), but it has "
                              f"{bn}: use another objective, or a discriminator with norm: instance/layer/none", key)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator loss on D(x) and D(G(z)) outputs (fakes must be detached by the caller)."""
        return self.d_weight * self.objective.d_loss(real_logits.float(), fake_logits.float(), self.real_label)

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """λ · generator loss on D(G(z)); ``real_logits`` = D(x), used (detached) by the relativistic objective only."""
        real = real_logits.float() if real_logits is not None else None
        return self.weight * self.objective.g_loss(fake_logits.float(), real)

    def penalty(self, d_fn: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        """λ_gp · GP for WGAN-GP (×d_weight); zero for the other objectives."""
        if not self.needs_penalty:
            return real.new_zeros(())
        return self.d_weight * self.gp_weight * gradient_penalty(d_fn, real, fake)

    def discriminator_terms(self, d_fn: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's whole loss on ``real`` and (already detached) ``fake`` inputs, with its logs.

        Two D calls, not one on the stacked batch: with batch norm in D, real and fake keep
        their own statistics (as DCGAN and pix2pix train). Adds the WGAN-GP penalty when the
        objective needs it. Logs ``d/real``, ``d/fake``, ``d/loss`` (and ``d/gp``).
        """
        real_logits, fake_logits = d_fn(real), d_fn(fake)
        loss = self.d_loss(real_logits, fake_logits)
        logs = {"d/real": self.score(real_logits), "d/fake": self.score(fake_logits)}
        if self.needs_penalty:
            gp = self.penalty(d_fn, real, fake)
            loss = loss + gp
            logs["d/gp"] = gp.detach()
        logs["d/loss"] = loss.detach()
        return loss, logs

    @torch.no_grad()
    def score(self, logits: Tensor) -> Tensor:
        """Mean D output to log: P(real) for the sigmoid games, the raw score otherwise."""
        logits = logits.detach().float()
        return (torch.sigmoid(logits) if self.objective.sigmoid else logits).mean()

    def forward(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:  # the generator's term
        return self.g_loss(fake_logits, real_logits)

    def extra_repr(self) -> str:
        return f"objective={self.name}, weight={self.weight}, d_weight={self.d_weight}"
