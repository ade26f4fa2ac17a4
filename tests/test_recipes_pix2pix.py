"""pix2pix recipe: losses and logs, L1-only baseline, samples, evaluation, padded inference,
and a short real training run on one tiny pair."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.pixel import L1Loss  # noqa: F401  (registers "l1")
from i2i.nn.patchgan import PatchGAN
from i2i.nn.unet import UNet
from i2i.recipes.pix2pix import Pix2Pix, laplacian_energy, pad_predict
from i2i.registry import LOSSES, RECIPES



class IdentityAccelerator:
    """Single-process stand-in: gather_for_metrics returns its input."""

    def gather_for_metrics(self, x: torch.Tensor) -> torch.Tensor:
        return x


def make(adv_weight: float = 1.0, conditional: bool = True, lam: float = 100.0, seed: int = 0):
    torch.manual_seed(seed)
    losses = {"adversarial": AdversarialLoss("vanilla", weight=adv_weight, d_weight=0.5),
              "pixel": LOSSES.build({"type": "l1", "weight": lam})}
    recipe = RECIPES.build({"type": "pix2pix", "conditional": conditional}, losses=losses)
    G = UNet(in_channels=1, out_channels=3, num_downs=3, base_channels=8, norm="batch")
    D = PatchGAN(in_channels=4 if conditional else 3, n_layers=1, base_channels=8)
    recipe.setup({"generator": G, "discriminator": D})
    return recipe, G, D


def batch(n: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"A": torch.rand(n, 1, size, size, generator=g) * 2 - 1, "B": torch.rand(n, 3, size, size, generator=g) * 2 - 1}


def test_losses_logs_and_gradients() -> None:
    recipe, G, D = make()
    b = batch()
    out = recipe(G, b)
    assert out["fake"].shape == (2, 3, 16, 16)
    loss_d, logs_d = recipe.d_loss(D, b, out)
    assert {"d/real", "d/fake", "d/loss"} <= set(logs_d)
    loss_d.backward()
    assert all(p.grad is None for p in G.parameters()), "D's loss must not reach G (fake detached)"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    # the paper halves D's objective
    real, fake = D(torch.cat([b["A"], b["B"]], 1)), D(torch.cat([b["A"], out["fake"].detach()], 1))
    full = nn.functional.softplus(-real).mean() + nn.functional.softplus(fake).mean()
    assert loss_d.item() == pytest.approx(0.5 * full.item(), rel=1e-5)

    D.zero_grad()
    loss_g, logs_g = recipe.g_loss(D, b, out)
    assert set(logs_g) == {"g/adv", "g/l1", "g/total"}
    assert logs_g["g/l1"].item() == pytest.approx(100 * (out["fake"] - b["B"]).abs().mean().item(), rel=1e-5)
    assert logs_g["g/total"].item() == pytest.approx(logs_g["g/adv"].item() + logs_g["g/l1"].item(), rel=1e-5)
    loss_g.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())


def test_l1_only_baseline_and_unconditional() -> None:
    recipe, G, D = make(adv_weight=0.0)
    b = batch()
    out = recipe(G, b)
    loss_g, logs = recipe.g_loss(D, b, out)
    assert logs["g/adv"].item() == 0.0 and loss_g.item() == pytest.approx(logs["g/l1"].item())
    recipe.d_loss(D, b, out)[0].backward()  # the engine still steps D: must work

    recipe, G, D = make(conditional=False)
    out = recipe(G, b)
    assert torch.isfinite(recipe.d_loss(D, b, out)[0]) and torch.isfinite(recipe.g_loss(D, b, out)[0])


def test_setup_checks_discriminator_channels() -> None:
    recipe, G, _ = make()
    with pytest.raises(ConfigError, match=r"models\.discriminator\.in_channels.*4"):
        recipe.setup({"generator": G, "discriminator": PatchGAN(in_channels=6, n_layers=1, base_channels=4)})
    with pytest.raises(ConfigError, match="losses.pixel"):
        Pix2Pix({"adversarial": AdversarialLoss()})


def test_samples_and_export_meta() -> None:
    recipe, G, _ = make()
    G.eval()
    grid = recipe.samples(G, batch(n=2, size=20))  # 20 is not a multiple of 8: padded inference
    assert grid.shape == (6, 3, 20, 20) and grid.min() >= 0 and grid.max() <= 1
    b = batch(n=2, size=20)
    assert torch.allclose(grid[0], b["A"][0].expand(3, -1, -1).add(1).div(2))
    assert torch.allclose(grid[2], b["B"][0].add(1).div(2))
    meta = recipe.export_meta()
    assert meta["value_range"] == [-1, 1] and meta["multiple"] == 8
    assert meta["in_channels"] == 1 and meta["out_channels"] == 3


def test_pad_predict() -> None:
    x = torch.randn(1, 2, 13, 30)
    assert torch.equal(pad_predict(nn.Identity(), x, 16), x)  # padding is cropped away exactly
    tiny = torch.randn(1, 2, 3, 5)
    assert torch.equal(pad_predict(nn.Identity(), tiny, 16), tiny)  # replicate fallback
    g = UNet(in_channels=2, out_channels=1, num_downs=3, base_channels=4).eval()
    assert pad_predict(g, x, 8).shape == (1, 1, 13, 30)


def test_evaluate_metrics() -> None:
    recipe, _, _ = make()
    b = batch(n=3, size=32)
    b["A"] = b["B"][:, :1]

    class Copy(nn.Module):  # "perfect" generator: returns the target's gray copy on 3 channels
        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return a.expand(-1, 3, -1, -1)

    target = {"A": b["A"], "B": b["A"].expand(-1, 3, -1, -1)}
    m = recipe.evaluate(Copy(), [target, target], IdentityAccelerator())
    assert m["l1"] == 0 and m["ssim"] == pytest.approx(1.0) and m["psnr"] == float("inf")
    assert m["sharpness"] == pytest.approx(1.0)

    class Blur(nn.Module):
        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return nn.functional.avg_pool2d(a.expand(-1, 3, -1, -1), 3, 1, 1, count_include_pad=False)

    m = recipe.evaluate(Blur(), [target], IdentityAccelerator())
    assert 0 < m["sharpness"] < 0.5 and m["l1"] > 0 and m["psnr"] < 40 and m["ssim"] < 1
    assert recipe.evaluate(Copy(), [], IdentityAccelerator()) == {}
    flat = torch.zeros(1, 3, 8, 8)
    assert laplacian_energy(flat).item() == 0


def test_short_training_run_reduces_l1() -> None:
    """The engine's step order (D then G, Adam 2e-4 β=(0.5, 0.999)) on one pair: L1 falls."""
    recipe, G, D = make(seed=3)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4 * 10, betas=(0.5, 0.999))  # ×10: few steps
    opt_d = torch.optim.Adam(D.parameters(), 2e-4 * 10, betas=(0.5, 0.999))
    b = batch(n=1, size=16)
    b["B"] = torch.cat([b["A"], -b["A"], b["A"].abs()], 1)  # a learnable mapping of A
    l1 = []
    for _ in range(40):
        out = recipe(G, b)
        loss_d, _ = recipe.d_loss(D, b, out)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        loss_g, logs = recipe.g_loss(D, b, out)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
        l1.append(logs["g/l1"].item())
    assert sum(l1[-5:]) / 5 < 0.6 * sum(l1[:5]) / 5


def test_laplacian_energy_by_hand() -> None:
    """One bright pixel in a 5×5 image: the valid 3×3 response is -4 at the centre and 1 at its
    4 neighbours, so the mean square is (16 + 4) / 9; a linear ramp has zero Laplacian."""
    x = torch.zeros(2, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 1.0
    x[1, 0] = torch.arange(5.0).view(1, 5) + 2 * torch.arange(5.0).view(5, 1)
    torch.testing.assert_close(laplacian_energy(x), torch.tensor([20 / 9, 0.0], dtype=torch.float64))
