"""pix2pix U-Net and ResNet-block generators: shapes, backward, dropout, size errors."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.resnet_generator import ResnetGenerator, resnet_6blocks, resnet_9blocks
from i2i.nn.unet import UNet, unet_128, unet_256
from i2i.registry import GENERATORS



@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("num_downs", [1, 3, 5])
def test_unet_shape_backward_range(norm: str, num_downs: int) -> None:
    torch.manual_seed(0)
    g = UNet(in_channels=1, out_channels=3, num_downs=num_downs, base_channels=4, max_channels=16, norm=norm,
             num_dropout=min(2, num_downs - 1))
    size = 2**num_downs * 2
    x = torch.rand(2, 1, size, size + 2**num_downs) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, size, size + 2**num_downs)
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0
    y.square().mean().backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    # the first encoder conv must receive gradient through the skips
    assert g.encoder[0][0].weight.grad.abs().sum() > 0


def test_unet_paper_channels() -> None:
    g = UNet(num_downs=8)
    enc = [blk[0].out_channels for blk in g.encoder]
    dec = [blk[0].out_channels for blk in g.decoder]
    assert enc == [64, 128, 256, 512, 512, 512, 512, 512]
    assert dec == [512, 512, 512, 512, 256, 128, 64]
    # no norm on the first layer; dropout only on the first three decoder layers
    assert isinstance(g.encoder[0][1], torch.nn.Identity)
    has_dropout = [any(isinstance(m, torch.nn.Dropout) for m in blk) for blk in g.decoder]
    assert has_dropout == [True, True, True, False, False, False, False]
    assert g.multiple == 256


def test_unet_dropout_train_vs_eval() -> None:
    torch.manual_seed(0)
    g = UNet(num_downs=4, base_channels=4, norm="instance", dropout=0.5, num_dropout=2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    g.train()
    a, b = g(x), g(x)
    assert not torch.allclose(a, b), "dropout should make two train-mode passes differ"
    g.eval()
    with torch.no_grad():
        c, d = g(x), g(x)
    assert torch.equal(c, d)


def test_unet_bad_size_error() -> None:
    g = UNet(num_downs=3, base_channels=4)
    with pytest.raises(ValueError, match="divisible by 8"):
        g(torch.zeros(1, 3, 20, 16))


@pytest.mark.parametrize("kwargs,key", [({"num_downs": 0}, "num_downs"), ({"dropout": 1.0}, "dropout"),
                                        ({"num_dropout": -1}, "num_dropout")])
def test_unet_bad_config(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        UNet(**kwargs)


def test_presets_registered() -> None:
    for name in ["unet", "unet_128", "unet_256", "resnet_generator", "resnet_6blocks", "resnet_9blocks"]:
        assert name in GENERATORS
    assert unet_128(base_channels=2).num_downs == 7
    assert unet_256(base_channels=2).num_downs == 8
    g = GENERATORS.build({"type": "unet_128", "in_channels": 1, "base_channels": 2})
    y = g(torch.zeros(1, 1, 128, 128))
    assert y.shape == (1, 3, 128, 128)
    with pytest.raises(ConfigError, match="norm"):
        GENERATORS.build({"type": "unet", "norm": "group"})


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_resnet_generator(norm: str) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(in_channels=1, out_channels=3, base_channels=4, n_blocks=2, norm=norm)
    x = torch.rand(2, 1, 20, 28) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, 20, 28)
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0
    y.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.zeros(1, 1, 18, 20))


def test_resnet_presets() -> None:
    def n_blocks(g: ResnetGenerator) -> int:
        return sum(type(m).__name__ == "ResnetBlock" for m in g.modules())

    assert n_blocks(resnet_6blocks(base_channels=2)) == 6
    assert n_blocks(resnet_9blocks(base_channels=2)) == 9
    # c7s1-64, d128, d256, R256, u128, u64, c7s1-3
    g = resnet_9blocks()
    convs = [m.out_channels for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs[:3] == [64, 128, 256] and convs[-3:] == [128, 64, 3]


@pytest.mark.parametrize("name", ["unet_256", "patchgan", "resnet_9blocks"])
def test_paper_init_is_the_default_and_selectable(name: str) -> None:
    """The released pix2pix/CycleGAN code: conv weights N(0, 0.02), BN scale N(1, 0.02), biases 0."""
    from torch import nn

    from i2i.registry import DISCRIMINATORS, GENERATORS

    reg = DISCRIMINATORS if name == "patchgan" else GENERATORS
    kw = {"base_channels": 8}
    torch.manual_seed(0)
    net = reg.build({"type": name, **kw}, "models.x")
    w = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if bn:
        g = torch.cat([m.weight.detach() for m in bn])
        assert abs(g.mean().item() - 1.0) < 0.01 and 0.01 < g.std().item() < 0.03
        assert all(torch.all(m.bias == 0) for m in bn)
    assert all(torch.all(m.bias == 0) for m in net.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    # `init: default` keeps PyTorch's (Kaiming-uniform, a=√5: std = 1/√(3·fan_in)); the first conv shows it
    torch.manual_seed(0)
    plain = reg.build({"type": name, **kw, "init": "default"}, "models.x")
    first = next(m for m in plain.modules() if isinstance(m, nn.Conv2d))
    fan_in = first.weight[0].numel()
    assert first.weight.std().item() == pytest.approx((3 * fan_in) ** -0.5, rel=0.1)
    kaiming = reg.build({"type": name, **kw, "init": "kaiming"}, "models.x")
    first = next(m for m in kaiming.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.15)


def test_unknown_init_is_a_config_error() -> None:
    from i2i.errors import ConfigError
    from i2i.registry import GENERATORS

    with pytest.raises(ConfigError, match=r"models.generator.init"):
        GENERATORS.validate({"type": "unet_256", "init": "xavier"}, "models.generator")


def test_decoder_sees_relu_of_the_concatenated_skips_as_the_released_code() -> None:
    """UnetSkipConnectionBlock: up = [ReLU, ConvT, Norm]; the skip is the encoder's LeakyReLU
    output (in place before torch.cat), so the decoder's input is ReLU(cat(decoded, skip))."""
    torch.manual_seed(0)
    net = UNet(3, 3, num_downs=3, base_channels=4, norm="batch", dropout=0.0).eval()
    x = torch.randn(2, 3, 16, 16)
    e0 = net.encoder[0](x)
    e1 = net.encoder[1](e0)
    e2 = net.encoder[2](e1)  # bottleneck
    d0 = net.decoder[0](torch.relu(e2))
    d1 = net.decoder[1](torch.relu(torch.cat([d0, e1], 1)))
    ref = net.head(torch.relu(torch.cat([d1, e0], 1)))
    assert (e0 < 0).any()  # LeakyReLU output: the ReLU on the skip matters
    torch.testing.assert_close(net(x), ref)
