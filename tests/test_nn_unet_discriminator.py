"""UNetDiscriminatorSN (Real-ESRGAN): per-pixel logits, spectral norm, the peer's key layout."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.unet_discriminator import UNetDiscriminatorSN
from i2i.registry import DISCRIMINATORS


def test_key_layout_is_real_esrgan() -> None:
    # realesrgan/archs/discriminator_arch.py: conv0 and conv9 plain, conv1..8 spectral-normed without bias
    expected = ["conv0.weight", "conv0.bias"]
    for i in range(1, 9):
        expected += [f"conv{i}.weight_orig", f"conv{i}.weight_u", f"conv{i}.weight_v"]
    expected += ["conv9.weight", "conv9.bias"]
    net = DISCRIMINATORS.build({"type": "unet_sn", "width": 4})
    assert list(net.state_dict()) == expected


def test_parameter_count() -> None:
    # conv0 3·64·9+64 = 1,792; conv1 64·128·16 = 131,072; conv2 128·256·16 = 524,288;
    # conv3 256·512·16 = 2,097,152; conv4 512·256·9 = 1,179,648; conv5 256·128·9 = 294,912;
    # conv6 128·64·9 = 73,728; conv7, conv8 2·36,864 = 73,728; conv9 64·9+1 = 577  -> 4,376,897
    assert sum(p.numel() for p in UNetDiscriminatorSN().parameters()) == 4_376_897


def test_per_pixel_logits_and_backward() -> None:
    torch.manual_seed(0)
    net = UNetDiscriminatorSN(width=8)
    x = torch.rand(2, 3, 16, 24, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 1, 16, 24) and torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_spectral_norm_bounds_each_layer() -> None:
    torch.manual_seed(0)
    net = UNetDiscriminatorSN(width=8)
    for _ in range(30):  # power iterations run in train-mode forwards
        net(torch.rand(1, 3, 8, 8))
    net.eval()
    net(torch.rand(1, 3, 8, 8))
    # the effective weight has largest singular value 1 (Miyato et al. 2018, eq. 8)
    for i in range(1, 9):
        conv = getattr(net, f"conv{i}")
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, rel=2e-2)  # 31 power iterations: within 2 %
        # the raw weight's norm is far from 1, so the bound comes from the normalisation
        assert abs(torch.linalg.matrix_norm(conv.weight_orig.flatten(1), ord=2).item() - 1.0) > 0.1


def test_skip_connections_change_the_output() -> None:
    torch.manual_seed(0)
    a = UNetDiscriminatorSN(width=8).eval()
    b = UNetDiscriminatorSN(width=8, skip_connection=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 8, 8)
    assert not torch.allclose(a(x), b(x))


def test_errors() -> None:
    with pytest.raises(ValueError, match="divisible by 8"):
        UNetDiscriminatorSN(width=4)(torch.rand(1, 3, 12, 16))
    with pytest.raises(ConfigError, match="^width: must be >= 1"):
        UNetDiscriminatorSN(width=0)
