"""PatchGAN discriminator: shapes, backward, and the receptive field, both from the layer
walk and measured by back-propagating one output logit to the input."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.patchgan import PatchGAN, pixelgan, receptive_field
from i2i.registry import DISCRIMINATORS

PAPER_RF = {0: 1, 1: 16, 2: 34, 3: 70, 4: 142, 5: 286}


@pytest.mark.parametrize("n_layers", [0, 1, 3, 5])
def test_receptive_field_from_layers(n_layers: int) -> None:
    assert receptive_field(PatchGAN(in_channels=4, n_layers=n_layers, base_channels=2)) == PAPER_RF[n_layers]
    assert receptive_field({"type": "patchgan", "n_layers": n_layers, "base_channels": 2}) == PAPER_RF[n_layers]


def test_receptive_field_defaults_and_pixelgan() -> None:
    assert receptive_field(PatchGAN()) == 70
    assert receptive_field(pixelgan(in_channels=4, base_channels=2)) == 1
    assert receptive_field({"n_layers": 1, "base_channels": 2}) == 16


def _gradient_extent(d: PatchGAN, size: int) -> tuple[int, int]:
    """Height and width of the input region whose gradient from the centre logit is non-zero."""
    x = torch.randn(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    nz = x.grad[0].abs().sum(0) > 0
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("n_layers", [0, 1, 3, 5])
def test_receptive_field_empirical(n_layers: int) -> None:
    torch.manual_seed(n_layers)
    d = PatchGAN(in_channels=2, n_layers=n_layers, base_channels=4, max_channels=8, norm="none").double()
    rf = receptive_field(d)
    # large enough that the centre logit's field lies inside the input (no clipping by borders)
    size = 2**n_layers * ((rf + 2 * 2**n_layers) // 2**n_layers + 4)
    assert _gradient_extent(d, size) == (rf, rf) == (PAPER_RF[n_layers], PAPER_RF[n_layers])


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_shapes_backward(norm: str, n_layers: int) -> None:
    torch.manual_seed(0)
    d = PatchGAN(in_channels=4, n_layers=n_layers, base_channels=4, norm=norm)
    x = torch.rand(2, 4, 64, 48) * 2 - 1
    y = d(x)
    expected = (64, 48) if n_layers == 0 else (64 // 2**n_layers - 2, 48 // 2**n_layers - 2)
    assert y.shape == (2, 1, *expected)
    assert torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())


def test_paper_70x70_layout_and_registry() -> None:
    d = DISCRIMINATORS.build({"type": "patchgan", "in_channels": 6})
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert "pixelgan" in DISCRIMINATORS
    with pytest.raises(ConfigError, match="n_layers"):
        PatchGAN(n_layers=-1)
