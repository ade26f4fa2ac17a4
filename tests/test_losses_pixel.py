import math

import pytest
import torch

import i2i.losses.pixel as pixel
from i2i.errors import ConfigError
from i2i.registry import LOSSES

PRED = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])  # (1, 1, 2, 2)
TARGET = torch.tensor([[[[0.5, 0.5], [0.0, 1.0]]]])
# differences: -0.5, 0, 1, -0.75


def test_l1_by_hand():
    expected = (0.5 + 0 + 1 + 0.75) / 4  # 0.5625
    assert pixel.l1_loss(PRED, TARGET).item() == pytest.approx(expected)
    assert LOSSES.build({"type": "l1", "weight": 2.0})(PRED, TARGET).item() == pytest.approx(2 * expected)


def test_mse_by_hand():
    expected = (0.25 + 0 + 1 + 0.5625) / 4  # 0.453125
    assert pixel.mse_loss(PRED, TARGET).item() == pytest.approx(expected)
    assert LOSSES.build({"type": "mse", "weight": 0.5})(PRED, TARGET).item() == pytest.approx(0.5 * expected)


def test_charbonnier_by_hand():
    eps = 0.1
    expected = sum(math.sqrt(d * d + eps * eps) for d in (-0.5, 0.0, 1.0, -0.75)) / 4
    assert pixel.charbonnier_loss(PRED, TARGET, eps).item() == pytest.approx(expected)
    loss = LOSSES.build({"type": "charbonnier", "weight": 3.0, "eps": eps})
    assert loss(PRED, TARGET).item() == pytest.approx(3 * expected)
    # equal inputs give eps (the LapSRN definition), and a tiny eps approaches L1
    assert pixel.charbonnier_loss(TARGET, TARGET, 1e-3).item() == pytest.approx(1e-3)
    assert pixel.charbonnier_loss(PRED, TARGET, 1e-6).item() == pytest.approx(pixel.l1_loss(PRED, TARGET).item(), abs=1e-5)


def test_matches_torch_functional_on_random_images():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    assert torch.allclose(pixel.l1_loss(a, b), torch.nn.functional.l1_loss(a, b))
    assert torch.allclose(pixel.mse_loss(a, b), torch.nn.functional.mse_loss(a, b))


def test_gradients_and_dtype():
    a = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    for fn in (pixel.mse_loss, lambda x, y: pixel.charbonnier_loss(x, y, 0.1)):
        assert torch.autograd.gradcheck(lambda x: fn(x, b).double(), (a,), eps=1e-6, atol=1e-3)
    half = torch.rand(1, 3, 4, 4).half()
    assert pixel.l1_loss(half, half).dtype == torch.float32


def test_shape_mismatch_and_bad_eps():
    with pytest.raises(ValueError, match="same shape"):
        pixel.l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ConfigError, match="eps"):
        pixel.CharbonnierLoss(eps=0.0)
    with pytest.raises(ConfigError, match="weight"):
        LOSSES.build({"type": "l1", "weight": "big"})
