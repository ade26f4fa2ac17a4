"""i2i.nn.blocks: norm/activation layers by name, conv-norm-act, and the initialisations."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from i2i.nn.blocks import act_layer, conv_norm_act, init_weights, norm_layer


def test_norm_layers_by_name() -> None:
    bn = norm_layer("batch", 6)
    assert type(bn) is nn.BatchNorm2d and bn.num_features == 6
    inorm = norm_layer("instance", 6)
    assert type(inorm) is nn.InstanceNorm2d and not inorm.affine and not inorm.track_running_stats  # pix2pix's
    assert type(norm_layer("none", 6)) is nn.Identity
    with pytest.raises(ValueError, match=r"^unknown norm 'group'; expected batch, instance or none$"):
        norm_layer("group", 6)


def test_activations_by_name() -> None:
    leaky = act_layer("leaky_relu")
    assert leaky.negative_slope == 0.2 and leaky.inplace
    assert act_layer("leaky_relu", slope=0.1)(torch.tensor([-10.0])).item() == pytest.approx(-1.0)
    prelu = act_layer("prelu", channels=5)
    assert prelu.num_parameters == 5 and prelu.weight.tolist() == [0.25] * 5  # one slope per channel (SRResNet)
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert act_layer("relu")(x.clone()).tolist() == [0.0, 0.0, 3.0]
    torch.testing.assert_close(act_layer("tanh")(x), torch.tanh(x))
    torch.testing.assert_close(act_layer("silu")(x.clone()), x * torch.sigmoid(x))
    assert type(act_layer("none")) is nn.Identity and type(act_layer("gelu")) is nn.GELU
    with pytest.raises(ValueError, match=r"^unknown activation 'swish'; expected one of relu, leaky_relu, prelu"):
        act_layer("swish")


def test_conv_norm_act_keeps_the_size_and_drops_the_bias_before_a_norm() -> None:
    block = conv_norm_act(3, 8, k=5, norm="batch", act="relu")
    conv = block[0]
    assert (conv.kernel_size, conv.padding, conv.bias) == ((5, 5), (2, 2), None)  # k // 2: 'same' at stride 1
    assert type(block[1]) is nn.BatchNorm2d and type(block[2]) is nn.ReLU
    assert block(torch.rand(2, 3, 9, 11)).shape == (2, 8, 9, 11)
    plain = conv_norm_act(3, 4, norm="none", act="none", stride=2, padding_mode="reflect")
    assert plain[0].bias is not None and plain[0].padding_mode == "reflect"  # no norm: the conv keeps its bias
    assert plain(torch.rand(1, 3, 9, 11)).shape == (1, 4, 5, 6)  # ⌈9/2⌉ × ⌈11/2⌉
    assert conv_norm_act(3, 4, norm="batch", bias=True)[0].bias is not None  # asked for explicitly


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.ConvTranspose2d(128, 64, 4), nn.Linear(8, 4))


def test_normal_init_is_pix2pix_and_dcgan_default() -> None:
    m = init_weights(net(), "normal", gain=0.02)
    w = m[0].weight  # 73,728 draws
    assert w.std().item() == pytest.approx(0.02, rel=0.02) and w.mean().item() == pytest.approx(0, abs=5e-4)
    assert m[2].weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(torch.equal(b, torch.zeros_like(b)) for b in (m[0].bias, m[2].bias, m[3].bias, m[1].bias))
    assert m[1].weight.mean().item() == pytest.approx(1.0, abs=0.01) and m[1].weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_kaiming_and_default_init() -> None:
    m = init_weights(net(), "kaiming")
    fan_in = 64 * 3 * 3
    assert m[0].weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)  # He et al.: √(2 / fan_in)
    assert torch.equal(m[1].weight, torch.ones(128)) and torch.equal(m[0].bias, torch.zeros(128))
    before, after = net(), init_weights(net(), "default")
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    with pytest.raises(ValueError, match=r"^init must be normal, kaiming or default, got 'xavier'$"):
        init_weights(net(), "xavier")  # type: ignore[arg-type]
