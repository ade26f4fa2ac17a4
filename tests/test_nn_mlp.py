"""i2i.nn.mlp (Goodfellow et al. 2014; Mirza & Osindero 2014): shapes, range and gradients
through the registry, parameter counts in closed form, and the forward pass written out."""
from __future__ import annotations

import pytest
from conftest import check_digit_networks
import torch
from torch import nn

from i2i.nn.mlp import MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("num_classes", [0, 10])
def test_built_by_name_shapes_range_and_gradients(num_classes: int) -> None:
    """Moved from tests/test_registry.py (was parametrised over mlp and dcgan)."""
    check_digit_networks("mlp", num_classes)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_in_closed_form() -> None:
    z, h1, h2, e = 16, 32, 64, 10
    # G: Linear(z+e → h1) + BN(h1), Linear(h1 → h2) + BN(h2), Linear(h2 → 784), all with biases
    want = (z + e) * h1 + h1 + 2 * h1 + h1 * h2 + h2 + 2 * h2 + h2 * 784 + 784
    assert n_params(MLPGenerator(z_dim=z, hidden=[h1, h2], num_classes=10, embed_dim=e)) == want + 10 * e
    assert n_params(MLPGenerator(z_dim=z, hidden=[h1, h2], num_classes=10, embed_dim=e, batch_norm=False)) \
        == want + 10 * e - 2 * (h1 + h2)
    # D: Linear(784 → h2), Linear(h2 → h1), real/fake head Linear(h1 → 1), class head Linear(h1 → 10)
    assert n_params(MLPDiscriminator(hidden=[h2, h1], aux_classes=10)) == 784 * h2 + h2 + h2 * h1 + h1 + h1 + 1 + h1 * 10 + 10


def test_forward_passes_written_out() -> None:
    torch.manual_seed(0)
    G = MLPGenerator(z_dim=4, hidden=[], image_size=3, channels=2, num_classes=5, embed_dim=3).eval()
    z, y = torch.randn(2, 4), torch.tensor([0, 4])
    lin = G.net[0]
    with torch.no_grad():
        want = torch.tanh(torch.cat([z, G.embed(y)], 1) @ lin.weight.T + lin.bias).view(2, 2, 3, 3)
        torch.testing.assert_close(G(z, y), want)
    D = MLPDiscriminator(hidden=[], image_size=3, channels=2, num_classes=5, embed_dim=3).eval()
    x = torch.rand(2, 2, 3, 3)
    with torch.no_grad():
        want = (torch.cat([x.flatten(1), D.embed(y)], 1) @ D.adv.weight.T + D.adv.bias).squeeze(1)
        torch.testing.assert_close(D(x, y), want)
    with pytest.raises(ValueError, match="^this discriminator is conditional: pass labels y$"):
        D(x)


def test_discriminator_dropout_is_the_papers_and_acts_in_training_only() -> None:
    torch.manual_seed(0)
    D = MLPDiscriminator(hidden=[64])
    assert D.features[2].p == 0.3
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert not torch.equal(D(x), D(x))
        D.eval()
        assert torch.equal(D(x), D(x))
