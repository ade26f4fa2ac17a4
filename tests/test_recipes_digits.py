"""i2i.recipes.digits (gan / cgan / acgan): losses and logs against the formulas computed by
hand on tiny DCGAN networks, the setup checks, fixed-noise samples, ranking by the
discriminator, and a few real training steps of every digit recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT
from i2i.config import load_config
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer
from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.classification import CrossEntropyLoss
from i2i.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from i2i.recipes.digits import rank_by_discriminator
from i2i.registry import RECIPES

FAST = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=16", "models.discriminator.base_channels=16", "data.batch_size=16"]


def train(task: str, out: Path, extra: list[str]) -> Trainer:
    t = Trainer(load_config(ROOT / "tasks" / f"{task}.yaml", FAST + extra), output_dir=out)
    t.fit()
    return t


def make(kind: str, **recipe_kw):  # noqa: ANN003, ANN201
    """recipe, G, D (eval mode: batch norm from running statistics, so two calls agree)."""
    torch.manual_seed(0)
    losses = {"adversarial": AdversarialLoss("non_saturating")}
    if kind == "acgan":
        losses["auxiliary"] = CrossEntropyLoss()
    recipe = RECIPES.build({"type": kind, "num_classes": 10, **recipe_kw}, losses=losses)
    G = DCGANGenerator(z_dim=8, base_channels=4, num_classes=10 if kind != "gan" else 0).eval()
    D = DCGANDiscriminator(base_channels=4, num_classes=10 if kind == "cgan" else 0,
                           aux_classes=10 if kind == "acgan" else 0).eval()
    recipe.setup({"generator": G, "discriminator": D})
    return recipe, G, D


def batch(n: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"image": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, "label": torch.tensor([0, 1, 2, 3, 4, 5][:n])}


# ----------------------------------------------------------------------------- losses by hand
def test_cgan_losses_are_the_non_saturating_game_on_labelled_pairs() -> None:
    recipe, G, D = make("cgan")
    b = batch()
    out = recipe(G, b)
    assert out["fake"].shape == (6, 1, 28, 28) and torch.equal(out["y_fake"], b["label"])  # fakes get the real labels
    loss_d, logs = recipe.d_loss(D, b, out)
    r, f = D(b["image"], b["label"]), D(out["fake"].detach(), b["label"])
    assert loss_d.item() == pytest.approx((F.softplus(-r).mean() + F.softplus(f).mean()).item(), rel=1e-5)  # −log σ(r) − log(1 − σ(f))
    assert logs["d/real"].item() == pytest.approx(torch.sigmoid(r).mean().item(), rel=1e-5)
    assert logs["d/fake"].item() == pytest.approx(torch.sigmoid(f).mean().item(), rel=1e-5)
    assert set(logs) == {"d/adv", "d/real", "d/fake", "d/loss"}
    loss_d.backward()
    assert all(p.grad is None for p in G.parameters())  # D's loss does not reach G
    loss_g, logs = recipe.g_loss(D, b, out)
    assert loss_g.item() == pytest.approx(F.softplus(-f).mean().item(), rel=1e-5)  # −log σ(D(G(z)))
    assert set(logs) == {"g/adv", "g/total"} and logs["g/total"].item() == logs["g/adv"].item()


@pytest.mark.parametrize("d_aux_on_fake, g_aux_scale", [(True, 1.0), (False, 0.5)])
def test_acgan_adds_the_class_terms(d_aux_on_fake: bool, g_aux_scale: float) -> None:
    recipe, G, D = make("acgan", d_aux_on_fake=d_aux_on_fake, g_aux_scale=g_aux_scale)
    b = batch()
    torch.manual_seed(5)
    out = recipe(G, b)
    torch.manual_seed(5)
    assert torch.equal(out["y_fake"], torch.randint(0, 10, (6,)))  # ACGAN draws the fakes' classes
    (r, r_aux), (f, f_aux) = D(b["image"]), D(out["fake"].detach())
    loss_d, logs = recipe.d_loss(D, b, out)
    aux = F.cross_entropy(r_aux, b["label"]) + (F.cross_entropy(f_aux, out["y_fake"]) if d_aux_on_fake else 0)
    assert logs["d/aux"].item() == pytest.approx(aux.detach().item(), rel=1e-5)
    assert loss_d.item() == pytest.approx((F.softplus(-r).mean() + F.softplus(f).mean() + aux).item(), rel=1e-5)
    assert logs["d/aux_acc_real"].item() == pytest.approx((r_aux.argmax(1) == b["label"]).float().mean().item())
    loss_g, logs = recipe.g_loss(D, b, out)
    g_aux = g_aux_scale * F.cross_entropy(f_aux, out["y_fake"])
    assert logs["g/aux"].item() == pytest.approx(g_aux.item(), rel=1e-5)
    assert loss_g.item() == pytest.approx((F.softplus(-f).mean() + g_aux).item(), rel=1e-5)


def test_an_unconditional_gan_never_shows_labels_to_its_networks() -> None:
    recipe, G, D = make("gan")
    torch.manual_seed(3)
    out = recipe(G, batch())
    torch.manual_seed(3)
    z = torch.randn(6, 8)
    assert torch.equal(out["fake"], G(z))
    labels = torch.tensor([1, 2])
    g = torch.Generator().manual_seed(0)
    assert torch.equal(recipe.generate(G, labels, generator=g), G(torch.randn(2, 8, generator=torch.Generator().manual_seed(0))))


# ----------------------------------------------------------------------------- setup checks
def test_setup_refuses_networks_that_do_not_fit_the_recipe() -> None:
    recipe, G, D = make("cgan")
    with pytest.raises(ConfigError, match=r"^models.generator.num_classes: recipe needs num_classes=10 for the generator, got 0$"):
        recipe.setup({"generator": DCGANGenerator(z_dim=8, base_channels=4), "discriminator": D})
    with pytest.raises(ConfigError, match=r"^models.discriminator.num_classes: recipe needs num_classes=10"):
        recipe.setup({"generator": G, "discriminator": DCGANDiscriminator(base_channels=4)})
    acgan, G, _ = make("acgan")
    with pytest.raises(ConfigError, match=r"^models.discriminator.aux_classes: recipe needs aux_classes=10$"):
        acgan.setup({"generator": G, "discriminator": DCGANDiscriminator(base_channels=4)})
    with pytest.raises(ConfigError, match=r"^losses.auxiliary: ACGAN needs an auxiliary classification loss"):
        RECIPES.build({"type": "acgan"}, losses={"adversarial": AdversarialLoss()})


# ----------------------------------------------------------------------------- monitoring and export
def test_samples_use_fixed_noise_and_one_class_per_column() -> None:
    recipe, G, _ = make("cgan", eval_seed=7)
    b = batch(6)
    grid = recipe.samples(G, b)
    assert torch.equal(grid, recipe.samples(G, b))  # the same noise every time: progress is comparable
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(7))
    want = G(z, torch.arange(6) % 10).add(1).div(2).clamp(0, 1)
    torch.testing.assert_close(grid, want)
    assert recipe.grid_nrow == 10 and make("gan")[0].grid_nrow == 8


def test_export_meta_and_evaluation_without_a_training_set() -> None:
    recipe, G, _ = make("acgan")
    assert recipe.export_meta() == {"value_range": [-1, 1], "num_classes": 10, "z_dim": 8, "conditional": True,
                                    "image_shape": [1, 28, 28]}
    assert make("gan")[0].export_meta()["conditional"] is False
    assert recipe.evaluate(G, [], None) == {}  # no training split given to setup: no classifier to train


@pytest.mark.parametrize("kind", ["cgan", "acgan"])
def test_rank_by_discriminator_keeps_the_best_scored_candidate(kind: str) -> None:
    recipe, G, D = make(kind)
    labels = torch.tensor([3, 5])
    got = rank_by_discriminator(recipe, G, D, labels, 4, generator=torch.Generator().manual_seed(0))
    cand = labels.repeat_interleave(4)
    with torch.no_grad():
        imgs = G(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)), cand)
        out = D(imgs, cand) if kind == "cgan" else D(imgs)
        score = F.logsigmoid(out) if kind == "cgan" else F.logsigmoid(out[0]) + F.log_softmax(out[1], 1)[range(8), cand]
    best = score.view(2, 4).argmax(1)
    assert torch.equal(got, imgs.view(2, 4, 1, 28, 28)[torch.arange(2), best])


# ----------------------------------------------------------------------------- real training steps


@pytest.mark.parametrize("task", ["gan_mnist", "dcgan_mnist", "cgan_mnist", "acgan_mnist"])
def test_every_digit_recipe_trains_a_few_real_steps(task: str, tmp_path: Path) -> None:
    extra = ["train.max_steps=6", "train.log_every=2"]
    if task == "gan_mnist":
        extra = [e for e in extra] + ["models.generator.hidden=[32, 64]", "models.discriminator.hidden=[64, 32]"]
        FAST_ = [f for f in FAST if "base_channels" not in f]
        cfg = load_config(ROOT / "tasks" / f"{task}.yaml", FAST_ + extra)
        Trainer(cfg, output_dir=tmp_path).fit()
    else:
        train(task, tmp_path, extra)
    rows = [r for r in read_metrics(tmp_path) if "g/total" in r]
    assert [r["step"] for r in rows] == [2, 4, 6]
    for r in rows:
        for k in ("g/adv", "d/loss", "d/real", "d/fake", "lr/generator", "perf/img_per_s"):
            assert isinstance(r[k], float), (k, r)
        assert 0 <= r["d/real"] <= 1 and 0 <= r["d/fake"] <= 1
    if task == "acgan_mnist":
        assert "g/aux" in rows[0] and "d/aux" in rows[0]
        assert rows[0]["g/total"] == pytest.approx(rows[0]["g/adv"] + rows[0]["g/aux"], rel=1e-5)
    assert (tmp_path / "export" / "config.json").is_file()
    assert (tmp_path / "checkpoints" / "step_00000006" / "state.pt").is_file()
    assert (tmp_path / "config.yaml").is_file()
