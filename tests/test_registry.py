"""Registries: build by name, duplicates rejected, listing, and kwargs checked against signatures.

(The digit networks built through them: tests/test_nn_dcgan.py, tests/test_nn_mlp.py.)"""
from __future__ import annotations

import pytest
from torch import nn

import i2i
from i2i.errors import ConfigError
from i2i.registry import ALL, Registry


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


