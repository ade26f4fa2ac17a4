"""i2i.recipes.base: the Update record, the Recipe defaults and GeneratorRecipe's updates
(one generator update; with a discriminator, d_steps runs of its update first)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.recipes.base import GeneratorRecipe, Recipe, Update


class Calls(GeneratorRecipe):
    """Each two-network method records its call and answers with a marker."""

    def __init__(self) -> None:
        super().__init__({"adversarial": AdversarialLoss("wgan_gp")})
        self.calls: list[tuple] = []

    def forward(self, G, batch):  # noqa: ANN001, ANN201
        self.calls.append(("forward", G, batch))
        return {"fake": "F"}

    def d_loss(self, D, batch, out):  # noqa: ANN001, ANN201
        self.calls.append(("d_loss", D, batch, out))
        return torch.tensor(1.0), {"d/loss": 1.0}

    def g_loss(self, D, batch, out):  # noqa: ANN001, ANN201
        self.calls.append(("g_loss", D, batch, out))
        return torch.tensor(2.0), {"g/total": 2.0}

    def samples(self, G, batch):  # noqa: ANN001, ANN201
        self.calls.append(("samples", G, batch))
        return torch.zeros(1, 3, 2, 2)

    def evaluate(self, G, batches, accelerator):  # noqa: ANN001, ANN201
        self.calls.append(("evaluate", G, batches, accelerator))
        return {"psnr": 1.0}


G, D = nn.Linear(1, 1), nn.Linear(1, 1)
NETS = {"generator": G, "discriminator": D}


def test_an_update_is_a_frozen_record_with_defaults() -> None:
    u = Update("g", ("generator",), lambda n, b, o: (torch.zeros(()), {}))
    assert (u.repeat, u.graph) == (1, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.repeat = 2  # type: ignore[misc]


def test_without_a_discriminator_there_is_one_generator_update() -> None:
    r = Calls()
    [g] = r.updates({"generator"}, d_steps=5)
    assert (g.name, g.slots, g.repeat, g.graph) == ("g", ("generator",), 1, True)
    assert g.loss({"generator": G}, "B", {"fake": "F"})[0].item() == 2.0
    assert r.calls == [("g_loss", None, "B", {"fake": "F"})]  # D is None: the recipe's g_loss is told


@pytest.mark.parametrize("d_steps", [1, 3])
def test_with_a_discriminator_its_update_runs_d_steps_times_first(d_steps: int) -> None:
    r = Calls()
    d, g = r.updates(["generator", "discriminator"], d_steps)
    assert (d.name, d.slots, d.repeat, d.graph) == ("d", ("discriminator",), d_steps, False)  # D's loss detaches the fake
    assert (g.name, g.slots, g.repeat, g.graph) == ("g", ("generator",), 1, True)
    d.loss(NETS, "B1", {"fake": "F"})
    g.loss(NETS, "B2", {"fake": "F"})
    assert r.calls == [("d_loss", D, "B1", {"fake": "F"}), ("g_loss", D, "B2", {"fake": "F"})]


def test_the_slot_methods_call_the_two_network_ones() -> None:
    r = Calls()
    assert r.run_forward(NETS, "B") == {"fake": "F"}
    assert r.sample_grid(NETS, "B").shape == (1, 3, 2, 2)
    assert r.run_evaluation(NETS, ["B"], "acc") == {"psnr": 1.0}
    assert [c[:2] for c in r.calls] == [("forward", G), ("samples", G), ("evaluate", G)]


def test_recipe_defaults() -> None:
    r = Recipe({"pixel": nn.L1Loss()})
    assert isinstance(r.losses, nn.ModuleDict) and list(r.losses) == ["pixel"]
    assert list(Recipe.model_slots) == ["generator", "discriminator"] and Recipe.ema_slots == ("generator",)
    assert r.train_state() == {} and r.export_meta() == {} and r.load_train_state({"x": 1}) is None
    assert r.run_evaluation(NETS, [], None) == {}
    for call in (lambda: r.updates({"generator"}), lambda: r.run_forward(NETS, {}), lambda: r.sample_grid(NETS, {})):
        with pytest.raises(NotImplementedError):
            call()
    assert sum(p.numel() for p in r.parameters()) == 0  # losses hold no trainable weights


def test_check_adversary_asks_the_adversarial_loss() -> None:
    r = Calls()  # wgan_gp: batch norm in the critic is refused (Gulrajani et al. §4)
    r.check_adversary(None)
    r.check_adversary(nn.Sequential(nn.Conv2d(1, 1, 1)))
    with pytest.raises(ConfigError, match=r"^losses.adversarial.objective: wgan_gp needs a discriminator without batch norm"):
        r.check_adversary(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))
    Recipe({}).check_adversary(nn.BatchNorm2d(1))  # no adversarial loss: nothing to check
