import pytest
import torch

import i2i.nn.vgg_style as vs
from i2i.errors import ConfigError
from i2i.registry import DISCRIMINATORS
from i2i.nn.srresnet import count_parameters


@pytest.mark.parametrize("hw", [(24, 24), (96, 96), (100, 73), (16, 16)])
def test_any_input_size_gives_logits(hw):
    torch.manual_seed(0)
    net = DISCRIMINATORS.build({"type": "srgan_vgg", "base_channels": 4})
    y = net(torch.rand(2, 3, *hw))
    assert y.shape == (2, 1) and torch.isfinite(y).all()


def test_paper_layout_at_96():
    net = vs.SRGANDiscriminator()
    convs = [m for m in net.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 7
    # at the paper's 96×96 crops the features already are 512×6×6: the pooling is the identity
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        f = net.features.eval()(x)
    assert f.shape == (1, 512, 6, 6)
    assert torch.equal(net.pool(f), f)
    # dense 512·6·6 → 1024 → 1, as in Fig. 4
    assert net.classifier[1].in_features == 512 * 36 and net.classifier[3].out_features == 1
    # convs: 3·64·9+64 | 64·64·9 | 64·128·9 | 128·128·9 | 128·256·9 | 256·256·9 | 256·512·9 | 512·512·9
    conv = 1792 + 36864 + 73728 + 147456 + 294912 + 589824 + 1179648 + 2359296
    bn = 2 * (64 + 128 + 128 + 256 + 256 + 512 + 512)
    dense = 18432 * 1024 + 1024 + 1024 + 1
    assert count_parameters(net) == conv + bn + dense  # 23,563,649


def test_backward_and_no_batch_norm():
    torch.manual_seed(0)
    net = vs.SRGANDiscriminator(base_channels=4, pool_size=2, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    x = torch.rand(3, 3, 33, 40, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_one_channel_and_errors():
    net = vs.SRGANDiscriminator(in_channels=1, base_channels=2)
    assert net(torch.rand(2, 1, 20, 20)).shape == (2, 1)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(2, 3, 20, 20))
    with pytest.raises(ConfigError, match="pool_size"):
        vs.SRGANDiscriminator(pool_size=0)
    with pytest.raises(ConfigError, match="batch_norm"):
        DISCRIMINATORS.build({"type": "srgan_vgg", "batch_norm": "yes"})
