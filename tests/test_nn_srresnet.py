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


def _literal_and_fused(model, x):
    model.fuse_tail = False
    ref = model(x)
    model.fuse_tail = True
    return ref, model(x)


@pytest.mark.parametrize("scale, out_channels", [(2, 3), (3, 3), (4, 3), (8, 1), (4, 2)])
def test_fused_tail_equals_literal_layers(scale, out_channels):
    """The sub-pixel-domain tail computes the paper's layer order, forward and backward."""
    torch.manual_seed(0)
    m = sr.SRResNet(scale, out_channels=out_channels, width=8, num_blocks=1)
    for mod in m.modules():  # per-channel slopes of both signs, so a wrong slope mapping shows
        if isinstance(mod, torch.nn.PReLU):
            mod.weight.data.uniform_(-0.5, 0.5)
    x = torch.rand(2, 3, 11, 14)  # odd sizes: the borders' zero padding must match too
    ref, fused = _literal_and_fused(m, x)
    assert fused.shape == ref.shape == (2, out_channels, 11 * scale, 14 * scale)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)
    m, x = m.double(), x.double()  # gradients: sums of thousands of terms; float64 shows the algebra alone
    grads = []
    for flag in (False, True):
        m.zero_grad()
        m.fuse_tail = flag
        (m(x) * torch.linspace(-1, 1, ref.numel()).view_as(ref)).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-10, rtol=1e-9)


def test_subpixel_conv_weight_any_kernel_and_factor():
    """conv(shuffle(x)) == shuffle(conv'(x)) for kernels 1..9 and factors 2..4 (closed-form rewrite)."""
    g = torch.Generator().manual_seed(1)
    for k in (1, 3, 5, 9):
        for r in (2, 3, 4):
            x = torch.randn(1, 2 * r * r, 5, 6, generator=g)
            w = torch.randn(3, 2, k, k, generator=g)
            ref = torch.nn.functional.conv2d(torch.nn.functional.pixel_shuffle(x, r), w, padding=k // 2)
            w2, p = sr.subpixel_conv_weight(w, r)
            assert w2.shape == (3 * r * r, 2 * r * r, 2 * p + 1, 2 * p + 1)
            out = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(x, w2, padding=p), r)
            torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="odd square kernel"):
        sr.subpixel_conv_weight(torch.zeros(1, 1, 4, 4), 2)


def test_fused_tail_state_dict_unchanged():
    m = sr.SRResNet(4, width=8, num_blocks=1)
    keys = set(m.state_dict())
    assert "tail.weight" in keys and not any("fuse" in k for k in keys)
    m2 = sr.SRResNet(4, width=8, num_blocks=1)
    m2.fuse_tail = False
    m2.load_state_dict(m.state_dict())
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(m2.eval()(x), m.eval()(x), atol=1e-5, rtol=1e-5)
