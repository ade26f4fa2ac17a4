"""i2i.tiling: tiled inference equals the untiled run; padding to a multiple."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i.tiling import pad_to_multiple, tiled_apply, unpad


def _sr_net(scale: int) -> nn.Module:
    """Receptive-field radius in LR pixels: 1 + 1 + ceil(1/scale) = 3."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(8),
        nn.Conv2d(8, 4 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
        nn.Conv2d(4, 3, 3, padding=1),
    ).eval()


@pytest.mark.parametrize("scale,size,tile", [(2, (37, 53), 16), (3, (21, 10), 8), (1, (19, 23), 7)])
def test_tiled_equals_untiled(scale: int, size: tuple[int, int], tile: int) -> None:
    net = _sr_net(scale) if scale > 1 else nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(),
                                                          nn.Conv2d(5, 3, 5, padding=2)).eval()
    x = torch.rand(1, 3, *size)
    sizes: list[tuple[int, int]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        sizes.append(tuple(t.shape[-2:]))
        return net(t)

    with torch.no_grad():
        full = net(x)
    out = tiled_apply(fn, x, scale=scale, tile=tile, overlap=4)
    assert out.shape == full.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert (out - full).abs().max().item() < 1 / 255 * 1e-3  # well within 1/255: exact up to round-off
    assert len(sizes) > 1 and max(h * w for h, w in sizes) <= (tile + 8) ** 2  # bounded patch size


def test_too_small_overlap_differs_and_bad_fn_is_reported() -> None:
    net = _sr_net(2)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        full = net(x)
    assert (tiled_apply(net, x, scale=2, tile=8, overlap=0) - full).abs().max() > 1e-3
    with pytest.raises(ValueError, match="expected"):
        tiled_apply(net, x, scale=3, tile=8, overlap=2)
    with pytest.raises(ValueError):
        tiled_apply(net, x[0], scale=2)


def test_output_device_and_single_tile() -> None:
    net = _sr_net(2)
    x = torch.rand(1, 3, 10, 12)
    out = tiled_apply(net, x, scale=2, tile=128, overlap=16, output_device="cpu")
    with torch.no_grad():
        assert torch.allclose(out, net(x))


def test_pad_to_multiple_and_unpad() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    p, size = pad_to_multiple(x, 4)
    assert p.shape == (2, 3, 8, 8) and size == (5, 7)
    assert torch.equal(p[..., :5, :7], x)
    assert torch.equal(p[..., 5, :7], x[..., 3, :])  # reflect: row 5 mirrors row 3
    assert torch.equal(unpad(p, size), x)
    q, _ = pad_to_multiple(torch.rand(1, 1, 2, 3), 8)  # pad >= size: falls back to replicate
    assert q.shape == (1, 1, 8, 8) and torch.equal(q[..., 7, 7], q[..., 1, 2])
    c, _ = pad_to_multiple(torch.ones(3, 5, 6), 4, mode="constant")
    assert c.shape == (3, 8, 8) and c[:, 5:].abs().sum() == 0
    same, s = pad_to_multiple(x[..., :4, :4], 4)
    assert same.shape == (2, 3, 4, 4) and s == (4, 4)
    assert unpad(torch.zeros(1, 3, 32, 32), (5, 7), scale=4).shape == (1, 3, 20, 28)


@pytest.mark.parametrize("n", [1, 2])
def test_batched_tiles_equal_tile_by_tile(n: int) -> None:
    net = _sr_net(2)
    x = torch.rand(n, 3, 45, 38)
    calls: list[int] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape[0] // n)
        return net(t)

    one = tiled_apply(net, x, scale=2, tile=8, overlap=4)
    many = tiled_apply(fn, x, scale=2, tile=8, overlap=4, batch=4)
    assert (many - one).abs().max().item() <= 1e-6
    assert max(calls) == 4 and sum(calls) == 6 * 5  # every tile once, interior ones four at a time
    with pytest.raises(ValueError, match="batch >= 1"):
        tiled_apply(net, x, scale=2, tile=8, overlap=4, batch=0)
