"""RRDBNet (ESRGAN / Real-ESRGAN): shapes, parameter count, the peers' key layout, spandrel round trip."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.rrdbnet import RRDBNet
from i2i.registry import GENERATORS


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_parameter_count() -> None:
    # conv_first  3·64·9 + 64                                 =      1,792
    # RDB: conv1  64·32·9 + 32 = 18,464    conv2  96·32·9 + 32 = 27,680
    #      conv3 128·32·9 + 32 = 36,896    conv4 160·32·9 + 32 = 46,112
    #      conv5 192·64·9 + 64 = 110,656                 RDB   =    239,808
    # RRDB = 3 RDB = 719,424;  23 RRDB                         = 16,546,752
    # conv_body, conv_up1, conv_up2, conv_hr  4·(64·64·9 + 64) =    147,712
    # conv_last   64·3·9 + 3                                   =      1,731
    # total                                                    = 16,697,987
    assert nparams(GENERATORS.build({"type": "rrdbnet"})) == 16_697_987
    # ×2 / ×1 differ only in conv_first's input channels (12 and 48 instead of 3)
    assert nparams(RRDBNet(scale=2)) == 16_697_987 + 9 * 64 * 9
    assert nparams(RRDBNet(scale=1)) == 16_697_987 + 45 * 64 * 9


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_shapes(scale: int) -> None:
    torch.manual_seed(0)
    net = RRDBNet(scale=scale, width=8, num_blocks=1, growth=4)
    assert net.conv_first.in_channels == 3 * {4: 1, 2: 4, 1: 16}[scale]
    y = net(torch.rand(2, 3, 8, 12))
    assert y.shape == (2, 3, 8 * scale, 12 * scale) and torch.isfinite(y).all()
    assert net.predict(torch.rand(1, 3, 4, 4)).clamp(0, 1).shape == (1, 3, 4 * scale, 4 * scale)


def test_key_layout_is_basicsr() -> None:
    # basicsr/archs/rrdbnet_arch.py (RRDBNet, RRDB, ResidualDenseBlock), 2 blocks
    expected = ["conv_first.weight", "conv_first.bias"]
    for b in range(2):
        for r in (1, 2, 3):
            for c in range(1, 6):
                expected += [f"body.{b}.rdb{r}.conv{c}.weight", f"body.{b}.rdb{r}.conv{c}.bias"]
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        expected += [f"{name}.weight", f"{name}.bias"]
    assert list(RRDBNet(num_blocks=2, width=8, growth=4).state_dict()) == expected


def test_dense_block_init_is_msra_times_0_1() -> None:
    torch.manual_seed(0)
    net = RRDBNet(width=64, num_blocks=2)
    w = torch.cat([net.body[b].rdb1.conv5.weight.flatten() for b in range(2)])
    fan_in = 192 * 9
    # Kaiming normal, gain √2, fan-in: std = √(2 / fan_in); ×0.1
    assert w.std().item() == pytest.approx(0.1 * (2 / fan_in) ** 0.5, rel=0.03)
    assert net.body[0].rdb2.conv1.bias.abs().max() == 0


def test_spandrel_detects_it_and_gives_the_same_output() -> None:
    import spandrel  # a [dev] dependency: the reference loader of the peers' formats

    torch.manual_seed(0)
    for scale in (1, 2, 4):
        net = RRDBNet(scale=scale, width=16, num_blocks=2).eval()
        desc = spandrel.ModelLoader().load_from_state_dict(net.state_dict())
        assert desc.architecture.id == "ESRGAN" and desc.scale == scale and desc.input_channels == 3
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad():
            assert torch.equal(desc.model.eval()(x), net(x))


def test_errors() -> None:
    with pytest.raises(ConfigError, match="^scale: must be one of 1, 2, 4"):
        RRDBNet(scale=3)
    with pytest.raises(ValueError, match="divisible by 4"):
        RRDBNet(scale=1, width=4, num_blocks=0, growth=2)(torch.rand(1, 3, 6, 8))
