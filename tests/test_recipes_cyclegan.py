"""CycleGAN recipe: loss terms against hand-computed values, the image pool, which networks each
update touches, the sample grid, evaluation, and the paper's YAML."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch import nn

from i2i import config
from i2i.engine.step import TrainStep
from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.pixel import L1Loss
from i2i.recipes.cyclegan import CycleGAN, ImagePool

ROOT = Path(__file__).resolve().parent.parent

# Hand-checkable values: 1×2×2 images, 1×1 convolutions as networks.
A = [0.2, -0.4, 0.6, 0.0]   # mean |a| = 0.3
B = [0.5, -1.0, 0.25, 0.25]  # mean |b| = 0.5, mean b = 0


class FakeAccelerator:
    """Single-process stand-in: gather_for_metrics returns its input."""

    def gather_for_metrics(self, x: torch.Tensor) -> torch.Tensor:
        return x


def affine(w: float, b: float = 0.0) -> nn.Conv2d:
    """x -> w·x + b as a 1×1 convolution (1 channel)."""
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(w)
        conv.bias.fill_(b)
    return conv


def tiny_nets() -> dict[str, nn.Module]:
    # G(x) = 0.5x, F(x) = -x, D_A(x) = x + 0.5, D_B(x) = 2x
    return {"generator_ab": affine(0.5), "generator_ba": affine(-1.0),
            "discriminator_a": affine(1.0, 0.5), "discriminator_b": affine(2.0)}


def make_recipe(identity: float | None = 5.0, pool_size: int = 50, nets: dict[str, nn.Module] | None = None) -> CycleGAN:
    losses: dict[str, nn.Module] = {"adversarial": AdversarialLoss("lsgan", weight=1.0, d_weight=0.5),
                                    "cycle": L1Loss(10.0)}
    if identity is not None:
        losses["identity"] = L1Loss(identity)
    r = CycleGAN(losses, pool_size=pool_size)
    r.setup(nets if nets is not None else tiny_nets())
    return r


def batch() -> dict[str, torch.Tensor]:
    return {"A": torch.tensor(A).view(1, 1, 2, 2), "B": torch.tensor(B).view(1, 1, 2, 2)}


def test_generator_terms_match_hand_computed_values() -> None:
    nets, b = tiny_nets(), batch()
    r = make_recipe(nets=nets)
    out = r.run_forward(nets, b)
    loss, logs = r.g_loss(nets, b, out)
    expected = {
        "g/cycle_a": 10 * 1.5 * 0.3,   # F(G(a)) = -0.5a: λ · mean|-1.5a|
        "g/cycle_b": 10 * 1.5 * 0.5,   # G(F(b)) = -0.5b: λ · mean|-1.5b|
        "g/adv_ab": 0.94,              # mean((D_B(G(a)) - 1)²) = mean((a - 1)²) = (0.64 + 1.96 + 0.16 + 1) / 4
        "g/adv_ba": 0.59375,           # mean((D_A(F(b)) - 1)²) = mean((b + 0.5)²) = (1 + 0.25 + 0.5625 + 0.5625) / 4
        "g/idt_b": 5 * 0.5 * 0.5,      # 0.5λ · mean|G(b) - b| = 5 · mean|0.5b|
        "g/idt_a": 5 * 2 * 0.3,        # 0.5λ · mean|F(a) - a| = 5 · mean|2a|
    }
    for k, v in expected.items():
        assert logs[k].item() == pytest.approx(v, rel=1e-6), k
    assert loss.item() == pytest.approx(17.78375, rel=1e-6) == logs["g/total"].item()


def test_without_identity_there_is_no_identity_term_nor_its_generator_passes() -> None:
    nets, b = tiny_nets(), batch()
    calls = {"generator_ab": 0}
    nets["generator_ab"].register_forward_hook(lambda *_: calls.__setitem__("generator_ab", calls["generator_ab"] + 1))
    for r in (make_recipe(identity=None, nets=nets), make_recipe(identity=0.0, nets=nets)):
        calls["generator_ab"] = 0
        loss, logs = r.g_loss(nets, b, r.run_forward(nets, b))
        assert "g/idt_a" not in logs and "g/idt_b" not in logs
        assert loss.item() == pytest.approx(17.78375 - 1.25 - 3.0, rel=1e-6)
        assert calls["generator_ab"] == 2  # G(a) and G(F(b)) only


def test_discriminator_terms_match_hand_computed_values_and_the_halved_paper_loss() -> None:
    nets, b = tiny_nets(), batch()
    r = make_recipe(nets=nets)
    loss, logs = r.d_loss(nets, b, r.run_forward(nets, b))  # a fresh pool returns the new fakes
    # D_B: ½[mean((2b - 1)²) + mean((2·0.5a)²)] = ½[2.375 + 0.14]
    assert logs["d_b/loss"].item() == pytest.approx(0.5 * (2.375 + 0.14), rel=1e-6)
    # D_A: ½[mean((a + 0.5 - 1)²) + mean((-b + 0.5)²)] = ½[0.29 + 0.59375]
    assert logs["d_a/loss"].item() == pytest.approx(0.5 * (0.29 + 0.59375), rel=1e-6)
    assert loss.item() == pytest.approx(1.699375, rel=1e-6) == logs["d/loss"].item()
    # mean raw scores (LSGAN has no sigmoid): D_B(b) = 2b, D_B(G(a)) = a, D_A(a) = a + 0.5, D_A(F(b)) = 0.5 - b
    assert logs["d_b/real"].item() == pytest.approx(0.0, abs=1e-7)
    assert logs["d_b/fake"].item() == pytest.approx(0.1, rel=1e-6)
    assert logs["d_a/real"].item() == pytest.approx(0.6, rel=1e-6)
    assert logs["d_a/fake"].item() == pytest.approx(0.5, rel=1e-6)


def _params(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize("which", ["g", "d"])
def test_each_update_changes_only_its_own_networks(which: str) -> None:
    """Through the engine's step: G's update leaves both D's without a gradient and unchanged;
    D's update (on detached, pooled fakes) leaves both generators so."""
    torch.manual_seed(0)
    nets = {"generator_ab": nn.Conv2d(1, 1, 3, padding=1), "generator_ba": nn.Conv2d(1, 1, 3, padding=1),
            "discriminator_a": nn.Conv2d(1, 1, 3, padding=1), "discriminator_b": nn.Conv2d(1, 1, 3, padding=1)}
    r = make_recipe(nets=nets)
    update = {u.name: u for u in r.updates(list(nets))}[which]
    assert update.slots == (("generator_ab", "generator_ba") if which == "g" else ("discriminator_a", "discriminator_b"))
    opts = {s: torch.optim.SGD(m.parameters(), lr=0.1) for s, m in nets.items()}
    before = {s: _params(m) for s, m in nets.items()}
    data = torch.randn(2, 4, 1, 8, 8)
    TrainStep(r, [update], nets, nets, opts)(lambda: {"A": data[0], "B": data[1]}, step=0)
    for s, m in nets.items():
        changed = [not torch.equal(p, q) for p, q in zip(m.parameters(), before[s])]
        grads = [p.grad for p in m.parameters()]
        if s in update.slots:
            assert all(changed) and all(g is not None and g.abs().sum() > 0 for g in grads), s
        else:
            assert not any(changed) and all(g is None for g in grads), s
        assert all(p.requires_grad for p in m.parameters()), "frozen only for the other update"


def test_updates_are_the_released_order_with_d_steps() -> None:
    r = make_recipe()
    g, d = r.updates(["generator_ab", "generator_ba", "discriminator_a", "discriminator_b"], d_steps=3)
    assert (g.name, g.graph, g.repeat) == ("g", True, 1)
    assert (d.name, d.graph, d.repeat) == ("d", False, 3)


# --- the image pool ----------------------------------------------------------------------
def img(v: float) -> torch.Tensor:
    return torch.full((1, 1, 2, 2), float(v))


def test_pool_fills_first_then_swaps_about_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(50)
    for k in range(50):  # filling: every image comes straight back and is stored
        assert torch.equal(pool.query(img(k)), img(k)) and len(pool) == k + 1
    assert [t[0, 0, 0].item() for t in pool.images] == list(range(50))
    swapped, n = 0, 2000
    for k in range(50, 50 + n):
        stored_before = {t[0, 0, 0].item() for t in pool.images}
        got = pool.query(img(k))[0, 0, 0, 0].item()
        stored_after = [t[0, 0, 0].item() for t in pool.images]
        if got == k:  # the new image is returned: the pool is unchanged
            assert set(stored_after) == stored_before
        else:  # an old image is returned and the new one takes its place
            swapped += 1
            assert got in stored_before and got not in stored_after and k in stored_after
        assert len(pool) == 50
    assert abs(swapped - n / 2) < 4 * (n * 0.25) ** 0.5  # Binomial(2000, ½): within 4σ = 89


def test_pool_works_per_image_of_a_batch_and_size_zero_passes_through() -> None:
    torch.manual_seed(0)
    pool = ImagePool(3)
    out = pool.query(torch.cat([img(1), img(2)]))
    assert out.shape == (2, 1, 2, 2) and len(pool) == 2
    out = pool.query(torch.cat([img(3), img(4)]))  # 3 fills the last place, 4 meets a full pool
    assert out[0, 0, 0, 0].item() == 3 and len(pool) == 3
    x = torch.randn(4, 1, 2, 2)
    assert ImagePool(0).query(x) is x
    with pytest.raises(ConfigError, match="pool_size"):
        ImagePool(-1)


def test_pool_draws_from_torch_rng_and_its_state_restores_exactly() -> None:
    torch.manual_seed(1)
    pool = ImagePool(5)
    for k in range(8):
        pool.query(img(k))
    state, rng = pool.state_dict(), torch.get_rng_state()
    assert all(t.device.type == "cpu" for t in state["images"]) and len(state["images"]) == 5
    first = [pool.query(img(100 + k))[0, 0, 0, 0].item() for k in range(30)]

    restored = ImagePool(5)
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    random.seed(12345)  # Python's generator plays no part
    again = [restored.query(img(100 + k))[0, 0, 0, 0].item() for k in range(30)]
    assert again == first and any(v < 100 for v in first)

    empty = ImagePool(5)
    empty.load_state_dict({})
    assert len(empty) == 0
    with pytest.raises(ConfigError, match="more than pool_size"):
        ImagePool(2).load_state_dict(state)


def test_recipe_train_state_round_trips_both_pools() -> None:
    nets, b = tiny_nets(), batch()
    r = make_recipe(nets=nets, pool_size=4)
    r.d_loss(nets, b, r.run_forward(nets, b))
    state = r.train_state()
    assert set(state) == {"pool_a", "pool_b"} and len(state["pool_a"]["images"]) == 1
    assert torch.equal(state["pool_b"]["images"][0], 0.5 * b["A"][0])  # G(a) went into D_B's pool
    r2 = make_recipe(nets=nets, pool_size=4)
    r2.load_train_state(state)
    assert torch.equal(r2.pools["a"].images[0], -b["B"][0])  # F(b) into D_A's pool
    r2.load_train_state({})
    assert len(r2.pools["a"]) == 0 and len(r2.pools["b"]) == 0


# --- setup checks, samples, evaluation, export ----------------------------------------------
def test_setup_rejects_networks_whose_channels_do_not_chain() -> None:
    def nets(**change: nn.Module) -> dict[str, nn.Module]:
        base = {"generator_ab": nn.Conv2d(1, 3, 1), "generator_ba": nn.Conv2d(3, 1, 1),
                "discriminator_a": nn.Conv2d(1, 1, 1), "discriminator_b": nn.Conv2d(3, 1, 1)}
        return {**base, **change}

    make_recipe(identity=None, nets=nets())  # gray A <-> RGB B is fine without identity
    only_generators = {k: v for k, v in nets().items() if k.startswith("generator")}  # an export, for inference
    assert make_recipe(identity=None, nets=only_generators).channels == {"a_channels": 1, "b_channels": 3}
    with pytest.raises(ConfigError, match="models.generator_ba.*must map 3 -> 1"):
        make_recipe(identity=None, nets=nets(generator_ba=nn.Conv2d(3, 3, 1)))
    with pytest.raises(ConfigError, match="models.discriminator_b.in_channels"):
        make_recipe(identity=None, nets=nets(discriminator_b=nn.Conv2d(1, 1, 1)))
    with pytest.raises(ConfigError, match="losses.identity"):
        make_recipe(identity=5.0, nets=nets())


def test_sample_grid_rows_are_a_fake_reconstruction_then_b_fake_reconstruction() -> None:
    nets, b = tiny_nets(), batch()
    r = make_recipe(nets=nets)
    grid = r.sample_grid(nets, b)
    a_, b_ = b["A"][0], b["B"][0]
    want = [a_, 0.5 * a_, -0.5 * a_, b_, -b_, -0.5 * b_]  # a, G(a), F(G(a)), b, F(b), G(F(b))
    assert grid.shape == (6, 1, 2, 2) and r.grid_nrow == 6
    for got, w in zip(grid, want):
        assert torch.allclose(got, (w + 1) / 2)


def test_evaluation_reports_cycle_errors_sharpness_and_paired_metrics() -> None:
    nets = tiny_nets()
    r = make_recipe(nets=nets)
    # 3×3 images (the Laplacian needs an interior pixel): a = 1 at the centre, b = 0.6 there, 0 elsewhere
    a, b = torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3)
    a[..., 1, 1], b[..., 1, 1] = 1.0, 0.6
    m = r.run_evaluation(nets, [{"A": a, "B": b}] * 2, FakeAccelerator())
    assert m["cycle_a"] == pytest.approx(1.5 * 1.0 / 9, rel=1e-6)  # mean |F(G(a)) - a| = mean |1.5a|
    assert m["cycle_b"] == pytest.approx(1.5 * 0.6 / 9, rel=1e-6)
    # (∇²)² at the centre of the [0, 1] images (0.5 around): a -> (4·0.5 - 4·1)² = 4, b -> 1.2² = 1.44,
    # G(a) = 0.5a -> 1² = 1, F(b) = -b -> 1.2² = 1.44
    assert m["sharpness_ab"] == pytest.approx(1 / 1.44, rel=1e-6)
    assert m["sharpness_ba"] == pytest.approx(1.44 / 4, rel=1e-6)
    assert set(m) == {"cycle_a", "cycle_b", "sharpness_ab", "sharpness_ba"}
    # paired items (SSIM needs 11×11 or more): a = 0.4, b = -0.3 everywhere; G(a) = 0.2, F(b) = 0.3
    a, b = torch.full((1, 1, 12, 12), 0.4), torch.full((1, 1, 12, 12), -0.3)
    paired = r.run_evaluation(nets, [{"A": a, "B": b, "paired": torch.tensor([1])}], FakeAccelerator())
    assert paired["l1_ab"] == pytest.approx(0.5, rel=1e-6)  # mean |G(a) - b|
    assert paired["l1_ba"] == pytest.approx(0.1, rel=1e-5)  # mean |F(b) - a|
    assert {"psnr_ab", "ssim_ab", "psnr_ba", "ssim_ba"} <= set(paired)
    assert r.run_evaluation(nets, [], FakeAccelerator()) == {}


def test_export_meta_names_directions_and_size_multiple() -> None:
    from i2i.nn.resnet_generator import ResnetGenerator
    from i2i.nn.patchgan import PatchGAN

    nets = {"generator_ab": ResnetGenerator(3, 3, 4, 1), "generator_ba": ResnetGenerator(3, 3, 4, 1, n_downsampling=3),
            "discriminator_a": PatchGAN(3, 1, 4), "discriminator_b": PatchGAN(3, 1, 4)}
    r = make_recipe(nets=nets)
    assert r.export_meta() == {"value_range": [-1, 1], "multiple": 8, "a_channels": 3, "b_channels": 3,
                               "directions": {"AtoB": "generator_ab", "BtoA": "generator_ba"}}
    assert r.ema_slots == r.inference_slots == ("generator_ab", "generator_ba") and r.task == "cyclegan"


def test_paper_yaml_holds_the_papers_settings(tmp_path: Path) -> None:
    for d in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / d).mkdir()
    cfg = config.load_config(ROOT / "tasks" / "cyclegan.yaml", [f"data.root={tmp_path}"])
    assert cfg.recipe == {"type": "cyclegan", "pool_size": 50}
    assert {cfg.models[s]["type"] for s in ("generator_ab", "generator_ba")} == {"resnet_9blocks"}
    for s in ("discriminator_a", "discriminator_b"):
        assert cfg.models[s]["type"] == "patchgan" and cfg.models[s]["n_layers"] == 3 and cfg.models[s]["norm"] == "instance"
    assert cfg.losses["adversarial"] == {"type": "adversarial", "objective": "lsgan", "weight": 1.0, "d_weight": 0.5}
    assert cfg.losses["cycle"]["weight"] == 10.0 and cfg.losses["identity"]["weight"] == 5.0
    assert cfg.data.batch_size == 1 and cfg.data.kwargs["load_size"] == 286 and cfg.data.kwargs["crop_size"] == 256
    for s in cfg.models:
        assert cfg.optim[s] == {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
        assert cfg.sched[s] == {"type": "linear_decay", "start": 0.5, "end_factor": 0.0}
    with pytest.raises(ConfigError, match="losses.pixel"):
        config.load_config(ROOT / "tasks" / "cyclegan.yaml", [f"data.root={tmp_path}", "losses.pixel={type: l1}"])
