"""i2i.nn.dcgan (Radford et al. 2016, 28×28 digits): shapes, range and gradients through the
registry, parameter counts in closed form, the paper's initialisation, and conditioning."""
from __future__ import annotations

import pytest
from conftest import check_digit_networks
import torch
from torch import nn

from i2i.nn.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("num_classes", [0, 10])
def test_built_by_name_shapes_range_and_gradients(num_classes: int) -> None:
    """Moved from tests/test_registry.py (was parametrised over mlp and dcgan)."""
    check_digit_networks("dcgan", num_classes)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("c, z", [(4, 8), (64, 100)])
def test_parameter_counts_in_closed_form(c: int, z: int) -> None:
    # G: Linear(z → 2c·7·7, no bias) + BN(2c) + ConvT(2c → c, 4×4, no bias) + BN(c) + ConvT(c → 1, 4×4) with bias
    assert n_params(DCGANGenerator(z_dim=z, base_channels=c)) == z * 98 * c + 4 * c + 32 * c * c + 2 * c + 16 * c + 1
    # D: Conv(1 → c, 4×4) + bias, Conv(c → 2c, 4×4, no bias) + BN(2c), Linear(2c·7·7 → 1) + bias
    assert n_params(DCGANDiscriminator(base_channels=c)) == 16 * c + c + 32 * c * c + 4 * c + 98 * c + 1
    # ACGAN's class head: Linear(2c·7·7 → 10)
    assert n_params(DCGANDiscriminator(base_channels=c, aux_classes=10)) - n_params(DCGANDiscriminator(base_channels=c)) \
        == 98 * c * 10 + 10


def test_initialisation_is_the_papers() -> None:
    """Radford et al. §4: weights N(0, 0.02); batch-norm scale N(1, 0.02), shift 0; biases 0."""
    torch.manual_seed(0)
    G = DCGANGenerator(base_channels=64)
    w = G.net[2].weight  # ConvT(128 → 64, 4×4): 131,072 draws
    assert w.mean().item() == pytest.approx(0.0, abs=5e-4) and w.std().item() == pytest.approx(0.02, rel=0.02)
    bn = G.net[0]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
    assert torch.equal(G.net[5].bias, torch.zeros(1))


def test_label_conditioning_concat_and_multiply() -> None:
    torch.manual_seed(0)
    z, y = torch.randn(3, 8), torch.tensor([1, 4, 9])
    cat = DCGANGenerator(z_dim=8, base_channels=4, num_classes=10, embed_dim=5).eval()
    assert cat.project[0].in_features == 13  # z ⧺ embedding
    with torch.no_grad():
        want = cat.net(cat.project(torch.cat([z, cat.embed(y)], 1)).view(-1, 8, 7, 7))
        assert torch.equal(cat(z, y), want)
    mul = DCGANGenerator(z_dim=8, base_channels=4, num_classes=10, cond="multiply").eval()
    assert mul.embed.embedding_dim == 8 and mul.project[0].in_features == 8  # embedding size = z_dim
    with torch.no_grad():
        assert torch.equal(mul(z, y), mul.net(mul.project(z * mul.embed(y)).view(-1, 8, 7, 7)))


def test_a_conditional_discriminator_sees_the_label_as_an_extra_plane() -> None:
    torch.manual_seed(0)
    D = DCGANDiscriminator(base_channels=4, num_classes=10).eval()
    assert D.features[0].in_channels == 2
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 3])
    with torch.no_grad():
        plane = D.embed(y).view(-1, 1, 28, 28)
        assert torch.equal(D(x, y), D.adv(D.features(torch.cat([x, plane], 1))).squeeze(1))
        assert not torch.equal(D(x, y), D(x, torch.tensor([3, 4])))  # the label changes the score
    with pytest.raises(ValueError, match="^this discriminator is conditional: pass labels y$"):
        D(x)


def test_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    D = DCGANDiscriminator(base_channels=4, dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    D.eval()
    with torch.no_grad():
        assert torch.equal(D(x), D(x))
        D.train()
        assert not torch.equal(D(x), D(x))
    assert D.features[1].negative_slope == 0.2 and D.features[5].negative_slope == 0.2  # LeakyReLU(0.2), §3
