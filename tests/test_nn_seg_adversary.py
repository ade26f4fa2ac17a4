"""Segmentation adversary: encodings × designs, label helpers, and the scaling encoding's properties."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from i2i.errors import ConfigError
from i2i.nn.seg_adversary import SegAdversary, encode_maps, scale_labels, to_onehot, valid_mask
from i2i.registry import DISCRIMINATORS

C = 4


def _labels(n=2, h=13, w=11, ignore_frac=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n, h, w), generator=g)
    y[torch.rand(n, h, w, generator=g) < ignore_frac] = 255
    return y


@pytest.mark.parametrize("encoding", ["basic", "product", "scaling"])
@pytest.mark.parametrize("design", ["two_branch", "largefov"])
def test_adversary_shape_and_backward(encoding, design):
    torch.manual_seed(0)
    net = DISCRIMINATORS.get("seg_adversary")(num_classes=C, width=8, encoding=encoding, design=design)
    x = torch.rand(2, 3, 13, 11)
    maps = torch.softmax(torch.randn(2, C, 13, 11), 1).requires_grad_(True)
    out = net(x, maps)
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_adversary_rejects_wrong_maps():
    net = SegAdversary(num_classes=C, width=8)
    with pytest.raises(ValueError, match="maps"):
        net(torch.rand(1, 3, 8, 8), torch.rand(1, C + 1, 8, 8))
    with pytest.raises(ConfigError, match="encoding"):
        SegAdversary(num_classes=C, encoding="nope")  # type: ignore[arg-type]


def test_product_encoding_layout():
    x = torch.rand(1, 3, 2, 2)
    maps = torch.rand(1, C, 2, 2)
    p = encode_maps(x, maps, "product")
    assert p.shape == (1, 3 * C, 2, 2)
    torch.testing.assert_close(p[:, 3 * 2 + 1], maps[:, 2] * x[:, 1])  # class 2, green channel
    assert encode_maps(x, maps, "basic") is maps


def test_onehot_zero_at_ignore_and_mask():
    y = torch.tensor([[[0, 255], [3, 1]]])
    oh = to_onehot(y, C, 255)
    assert oh.shape == (1, C, 2, 2)
    assert oh[0, :, 0, 1].sum() == 0
    assert oh[0, 3, 1, 0] == 1 and oh[0, 0, 0, 0] == 1 and oh.sum() == 3
    torch.testing.assert_close(valid_mask(y), torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]]))
    with pytest.raises(ValueError, match="7"):
        to_onehot(torch.tensor([[[7]]]), C, 255)


def test_scaling_known_values():
    # one pixel, true class 0; prediction (0.5, 0.3, 0.2, 0.0), τ = 0.9
    oh = torch.tensor([1.0, 0, 0, 0]).view(1, 4, 1, 1)
    s = torch.tensor([0.5, 0.3, 0.2, 0.0]).view(1, 4, 1, 1)
    out = scale_labels(oh, s, 0.9).flatten()
    torch.testing.assert_close(out, torch.tensor([0.9, 0.06, 0.04, 0.0]))
    # already confident (0.95 ≥ τ): equals the prediction
    s2 = torch.tensor([0.95, 0.03, 0.02, 0.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(scale_labels(oh, s2, 0.9), s2)
    # τ = 1: the one-hot itself
    torch.testing.assert_close(scale_labels(oh, s, 1.0), oh)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.0, 1.0), sharp=st.floats(0.1, 20.0))
def test_scaling_properties(seed, tau, sharp):
    g = torch.Generator().manual_seed(seed)
    y = _labels(seed=seed)
    oh = to_onehot(y, C)
    probs = torch.softmax(sharp * torch.randn(2, C, 13, 11, generator=g, dtype=torch.float64), 1)
    out = scale_labels(oh.double(), probs, tau)
    valid = (y != 255)
    sums = out.sum(1)
    torch.testing.assert_close(sums[valid], torch.ones_like(sums[valid]))  # a distribution
    assert (sums[~valid] == 0).all()  # ignored pixels stay zero
    true_p = (out * oh).sum(1)[valid]
    s_true = (probs * oh).sum(1)[valid]
    assert (true_p >= tau - 1e-9).all()
    assert (out >= 0).all() and (out <= 1 + 1e-9).all()
    confident = s_true >= tau
    torch.testing.assert_close(out.permute(0, 2, 3, 1)[valid][confident], probs.permute(0, 2, 3, 1)[valid][confident])
    torch.testing.assert_close(true_p[~confident], torch.full_like(true_p[~confident], tau))
    # other classes keep the prediction's proportions: ȳ_c = s_c (1 - ȳ_l) / (1 - s_l)
    px = lambda t: t.permute(0, 2, 3, 1)[valid][~confident]  # noqa: E731  (P, C) rows
    ratio = ((1 - true_p) / (1 - s_true))[~confident].unsqueeze(1)
    torch.testing.assert_close(px(out * (1 - oh)), px(probs * (1 - oh)) * ratio)


def test_scaling_does_not_backprop_into_probs():
    oh = to_onehot(_labels(), C)
    probs = torch.softmax(torch.randn(2, C, 13, 11), 1).requires_grad_(True)
    assert not scale_labels(oh, probs, 0.9).requires_grad
