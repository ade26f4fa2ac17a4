"""GAN objectives against closed-form values on known logits, and the λ wrapper."""
from __future__ import annotations

import math

import pytest
import torch

from i2i.losses.adversarial import AdversarialLoss, gradient_penalty
from i2i.registry import LOSSES

R = torch.tensor([2.0, -1.0, 0.5])  # D's logits on real samples
F_ = torch.tensor([-3.0, 0.0, 1.0])  # ... on fakes


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


BCE_D = mean([-math.log(sig(r)) for r in R.tolist()]) + mean([-math.log(1 - sig(f)) for f in F_.tolist()])


@pytest.mark.parametrize("objective, d_expected, g_expected", [
    ("minimax", BCE_D, mean([math.log(1 - sig(f)) for f in F_.tolist()])),
    ("non_saturating", BCE_D, mean([-math.log(sig(f)) for f in F_.tolist()])),
    ("vanilla", BCE_D, mean([-math.log(sig(f)) for f in F_.tolist()])),
    # Goodfellow 2016 tutorial eq. 10: J(G) = -1/2 E exp(σ⁻¹(D(G(z)))), σ⁻¹(D) is the logit; like
    # every objective here without the ½ (one convention: λ means the same for all six)
    ("maximum_likelihood", BCE_D, mean([-math.exp(f) for f in F_.tolist()])),
    ("least_squares", mean([(r - 1) ** 2 for r in R.tolist()]) + mean([f**2 for f in F_.tolist()]),
     mean([(f - 1) ** 2 for f in F_.tolist()])),
    ("hinge", mean([max(0, 1 - r) for r in R.tolist()]) + mean([max(0, 1 + f) for f in F_.tolist()]),
     mean([-f for f in F_.tolist()])),
    ("wgan_gp", mean(F_.tolist()) - mean(R.tolist()), -mean(F_.tolist())),
])
def test_closed_forms(objective: str, d_expected: float, g_expected: float) -> None:
    adv = AdversarialLoss(objective)
    assert adv.d_loss(R, F_).item() == pytest.approx(d_expected, rel=1e-6)
    assert adv.g_loss(F_).item() == pytest.approx(g_expected, rel=1e-6)


def test_weights_apply_to_the_right_terms() -> None:
    plain = AdversarialLoss("non_saturating")
    w = LOSSES.build({"type": "adversarial", "objective": "non_saturating", "weight": 1e-3, "d_weight": 0.5})
    assert w.g_loss(F_).item() == pytest.approx(1e-3 * plain.g_loss(F_).item())
    assert w(F_).item() == pytest.approx(w.g_loss(F_).item())
    assert w.d_loss(R, F_).item() == pytest.approx(0.5 * plain.d_loss(R, F_).item())


def test_one_sided_label_smoothing() -> None:
    adv = AdversarialLoss("non_saturating", real_label=0.9)
    expected = mean([-(0.9 * math.log(sig(r)) + 0.1 * math.log(1 - sig(r))) for r in R.tolist()]) + \
        mean([-math.log(1 - sig(f)) for f in F_.tolist()])
    assert adv.d_loss(R, F_).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("objective", ["minimax", "non_saturating", "maximum_likelihood", "least_squares", "hinge", "wgan_gp"])
def test_stable_on_extreme_logits(objective: str) -> None:
    adv = AdversarialLoss(objective)
    big = torch.tensor([-1e4, 1e4, 80.0, -80.0], requires_grad=True)
    d = adv.d_loss(big, big.flip(0))
    g = adv.g_loss(big)
    (d + g).backward()
    assert torch.isfinite(d) and torch.isfinite(g) and torch.isfinite(big.grad).all()


def test_non_saturating_keeps_gradient_where_minimax_saturates() -> None:
    # D confidently rejects the fake (logit -10): minimax's gradient vanishes, NS's does not
    f = torch.tensor([-10.0], requires_grad=True)
    AdversarialLoss("minimax").g_loss(f).backward()
    g_mm = f.grad.abs().item()
    f.grad = None
    AdversarialLoss("non_saturating").g_loss(f).backward()
    assert g_mm < 1e-4 < f.grad.abs().item()


def test_gradient_penalty_closed_form() -> None:
    # D(x) = w·x has ∇D = w everywhere: GP = (‖w‖ - 1)² whatever the interpolates
    w = torch.tensor([3.0, 4.0])
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    gp = gradient_penalty(lambda x: x @ w, real, fake)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)
    adv = AdversarialLoss("wgan_gp", gp_weight=10.0)
    assert adv.needs_penalty
    assert adv.penalty(lambda x: x @ w, real, fake).item() == pytest.approx(160.0)
    assert AdversarialLoss("hinge").penalty(lambda x: x @ w, real, fake).item() == 0.0


def test_score_is_probability_for_sigmoid_games_and_raw_otherwise() -> None:
    assert AdversarialLoss("non_saturating").score(torch.zeros(3)).item() == pytest.approx(0.5)
    assert AdversarialLoss("hinge").score(torch.tensor([1.0, 3.0])).item() == pytest.approx(2.0)


def test_unknown_objective_names_the_key() -> None:
    from i2i.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^losses.adversarial.objective: unknown GAN objective 'x'"):
        LOSSES.build({"type": "adversarial", "objective": "x"}, "losses.adversarial")


def test_gradient_penalty_uses_the_per_sample_mean_of_a_patch_critic() -> None:
    # a "patch" critic D(x) = w ⊙ x gives P = 4 scores per sample; the Wasserstein loss averages
    # them, so the critic is mean_p(w_p x_p) with gradient w / P: GP = (‖w‖/P - 1)² = (5/4 - 1)²
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    gp = gradient_penalty(lambda x: (x * w).view(-1, 1, 2, 2), real, fake)
    assert gp.item() == pytest.approx(0.0625)  # the gradient of the map's sum would give (5 - 1)² = 16


def test_wgan_gp_refuses_a_batch_norm_discriminator() -> None:
    from torch import nn

    from i2i.errors import ConfigError
    from i2i.nn.patchgan import PatchGAN
    from i2i.recipes.pix2pix import Pix2Pix
    from i2i.losses.pixel import L1Loss

    G = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))
    losses = {"pixel": L1Loss(), "adversarial": AdversarialLoss("wgan_gp")}
    with pytest.raises(ConfigError, match=r"^losses.adversarial.objective: wgan_gp needs a discriminator without "
                                          r"batch norm .*BatchNorm2d"):
        Pix2Pix(losses).setup({"generator": G, "discriminator": PatchGAN(6, base_channels=8, n_layers=1)})
    Pix2Pix(losses).setup({"generator": G, "discriminator": PatchGAN(6, base_channels=8, n_layers=1, norm="instance")})
    hinge = {"pixel": L1Loss(), "adversarial": AdversarialLoss("hinge")}
    Pix2Pix(hinge).setup({"generator": G, "discriminator": PatchGAN(6, base_channels=8, n_layers=1)})


def test_relativistic_average_closed_form() -> None:
    # ESRGAN eq. 1–2: D_Ra(a, b) = σ(C(a) − mean C(b)); r̄, f̄ the mean real / fake logits
    rbar, fbar = mean(R.tolist()), mean(F_.tolist())
    d = mean([-math.log(sig(r - fbar)) for r in R.tolist()]) + mean([-math.log(1 - sig(f - rbar)) for f in F_.tolist()])
    g = mean([-math.log(1 - sig(r - fbar)) for r in R.tolist()]) + mean([-math.log(sig(f - rbar)) for f in F_.tolist()])
    for name in ("relativistic", "ragan"):
        adv = AdversarialLoss(name, weight=0.1)
        assert adv.needs_real_logits
        assert adv.d_loss(R, F_).item() == pytest.approx(d, rel=1e-6)
        assert adv.g_loss(F_, R).item() == pytest.approx(0.1 * g, rel=1e-6)
        assert adv(F_, R).item() == pytest.approx(0.1 * g, rel=1e-6)
    # a patch map: the means run over every element of the batch's maps
    r2, f2 = R.view(1, 1, 1, 3).repeat(2, 1, 2, 1), F_.view(1, 1, 1, 3).repeat(2, 1, 2, 1)
    assert AdversarialLoss("relativistic").g_loss(f2, r2).item() == pytest.approx(g, rel=1e-6)
    with pytest.raises(ValueError, match="needs D's logits on the real batch"):
        AdversarialLoss("relativistic").g_loss(F_)


def test_relativistic_generator_gradient_flows_through_fakes_only() -> None:
    fake, real = F_.clone().requires_grad_(True), R.clone().requires_grad_(True)
    AdversarialLoss("relativistic").g_loss(fake, real).backward()
    assert real.grad is None and fake.grad is not None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize("objective", ["minimax", "non_saturating", "maximum_likelihood", "least_squares", "hinge",
                                       "wgan_gp"])
def test_the_six_ignore_real_logits(objective: str) -> None:
    adv = AdversarialLoss(objective)
    assert not adv.needs_real_logits
    assert adv.g_loss(F_, R).item() == adv.g_loss(F_).item()
