"""Registries: build by name, duplicates rejected, listing, and kwargs checked against signatures."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import i2i
from i2i.errors import ConfigError
from i2i.registry import ALL, GENERATORS, Registry


def test_every_kind_has_a_non_empty_list() -> None:
    for kind, reg in ALL.items():
        assert reg.list(), kind
    assert {"gan", "cgan", "acgan", "sr", "pix2pix", "seg_adversarial"} <= set(i2i.RECIPES.list())
    assert {"minimax", "non_saturating", "maximum_likelihood", "least_squares", "hinge", "wgan_gp"} <= set(
        i2i.GAN_OBJECTIVES.list())


def test_adding_a_generator_is_one_class_plus_one_registration() -> None:
    reg = Registry("generator")

    @reg.register("tiny")
    class Tiny(nn.Module):
        def __init__(self, width: int = 4, act: str = "relu"):
            super().__init__()
            self.lin = nn.Linear(width, width)

    net = reg.build({"type": "tiny", "width": 3})
    assert net.lin.in_features == 3
    with pytest.raises(KeyError, match="already registered"):
        reg.register("tiny")(Tiny)
    with pytest.raises(ConfigError, match=r"^m.width: expected int, got '3'"):
        reg.build({"type": "tiny", "width": "3"}, "m")
    with pytest.raises(ConfigError, match=r"^m.depth: unknown key; allowed: act, width"):
        reg.build({"type": "tiny", "depth": 3}, "m")
    with pytest.raises(ConfigError, match=r"^m: missing 'type'"):
        reg.build({"width": 3}, "m")


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_digit_generators_and_discriminators(name: str, num_classes: int) -> None:
    torch.manual_seed(0)
    G = GENERATORS.build({"type": name, "z_dim": 16, "num_classes": num_classes})
    D = i2i.DISCRIMINATORS.build({"type": name, "num_classes": num_classes})
    Daux = i2i.DISCRIMINATORS.build({"type": name, "aux_classes": 10})
    z = torch.randn(4, 16)
    y = torch.tensor([0, 3, 7, 9])
    x = G(z, y) if num_classes else G(z)
    assert x.shape == (4, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    logit = D(x, y) if num_classes else D(x)
    assert logit.shape == (4,)
    adv, cls = Daux(x)
    assert adv.shape == (4,) and cls.shape == (4, 10)
    (logit.sum() + adv.sum() + cls.sum()).backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if num_classes:
        with pytest.raises(ValueError, match="conditional"):
            G(z)
