import pytest
import torch

import i2i.nn.srresnet as sr
from i2i.errors import ConfigError
from i2i.registry import GENERATORS


def test_paper_parameter_count():
    # head:   conv 9×9 3→64 + bias            3·64·81 + 64   =    15,616
    #         PReLU (per channel)                            =        64
    # block:  2 × conv3 64→64 (no bias)       2·36,864       =    73,728
    #         2 × BN (γ, β)                   2·128          =       256
    #         PReLU                                          =        64
    #         16 blocks                       16·74,048      = 1,184,768
    # body end: conv3 (no bias) + BN          36,864 + 128   =    36,992
    # up ×2:  conv3 64→256 + bias + PReLU     147,712 + 64   =   147,776
    #         2 stages                                       =   295,552
    # tail:   conv 9×9 64→3 + bias            64·3·81 + 3    =    15,555
    # total                                                  = 1,548,547
    net = GENERATORS.build({"type": "srresnet_x4"})
    assert sr.count_parameters(net) == 1_548_547
    assert sr.count_parameters(sr.SRResNet()) == 1_548_547
    # BN running statistics are buffers, not parameters
    assert sum(b.numel() for b in net.buffers()) > 0


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_shapes_every_scale(scale):
    torch.manual_seed(0)
    net = GENERATORS.build({"type": "srresnet", "scale": scale, "width": 8, "num_blocks": 2})
    preset = GENERATORS.build({"type": f"srresnet_x{scale}", "width": 8, "num_blocks": 1})
    x = torch.rand(2, 3, 5, 7)
    for m in (net, preset):
        y = m(x)
        assert y.shape == (2, 3, 5 * scale, 7 * scale)
        assert torch.isfinite(y).all()
        assert m.scale == scale


def test_backward_reaches_every_parameter_and_no_nans():
    torch.manual_seed(0)
    net = sr.SRResNet(scale=4, width=8, num_blocks=2)
    x = torch.rand(2, 3, 6, 6)
    y = net(x)
    loss = (y - torch.rand_like(y)).pow(2).mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_no_batch_norm_and_channels():
    net = sr.SRResNet(scale=2, in_channels=1, out_channels=1, width=8, num_blocks=2, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    # without BN every conv carries a bias
    assert all(m.bias is not None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(1, 1, 4, 4)
    assert net.training and net(x).shape == (1, 1, 8, 8)
    # in train mode an image's output ignores its batch companions only without BN
    x2 = torch.cat([x, torch.rand(1, 1, 4, 4)])
    assert torch.allclose(net(x2)[:1], net(x), atol=1e-6)


def test_predict_clamps_and_bn_convs_have_no_bias():
    net = sr.SRResNet(scale=2, width=8, num_blocks=1).eval()
    out = net.predict(torch.rand(1, 3, 4, 4) * 10)
    assert out.min() >= 0 and out.max() <= 1
    block = net.body[0].body
    assert block[0][0].bias is None and isinstance(block[0][1], torch.nn.BatchNorm2d)
    assert isinstance(block[0][2], torch.nn.PReLU) and block[0][2].weight.numel() == 8


@pytest.mark.parametrize("bad", [1, 5, 16, 0])
def test_bad_scale_names_the_key(bad):
    with pytest.raises(ConfigError, match="^scale: must be one of 2, 3, 4, 8"):
        sr.SRResNet(scale=bad)
    with pytest.raises(ConfigError, match=r"model\.generator\.scale"):
        GENERATORS.build({"type": "srresnet", "scale": bad}, key="model.generator")


def test_config_errors():
    with pytest.raises(ConfigError, match="width"):
        sr.SRResNet(width=0)
    with pytest.raises(ConfigError, match="scale"):  # presets do not take a scale
        GENERATORS.build({"type": "srresnet_x4", "scale": 2})
    with pytest.raises(ValueError, match="expects"):
        sr.SRResNet(scale=2, width=4, num_blocks=1)(torch.rand(1, 1, 4, 4))
